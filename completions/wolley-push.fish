# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_wolley_push_global_optspecs
    string join \n database-url= credentials= project-id= fcm-endpoint= fcm-ca-file= concurrency= rate= targets= timezone= max-attempts= backoff= quota-backoff= max-dead-share= force-prune request-timeout= format= progress= q/quiet v/verbose metrics-file= ping-url= h/help V/version
end

function __fish_wolley_push_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_wolley_push_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_wolley_push_using_subcommand
    set -l cmd (__fish_wolley_push_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c wolley-push -n "__fish_wolley_push_needs_command" -l database-url -d 'MariaDB URL of the Wolley backend, e.g. mysql://wolley:secret@127.0.0.1:3306/wolley' -r
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l credentials -d 'Google service-account JSON key used to obtain FCM access tokens' -r -F
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l project-id -d 'Firebase project to send through [default: the key\'s project_id]' -r
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l fcm-endpoint -d 'Base URL of the FCM HTTP v1 API' -r
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l fcm-ca-file -d 'Also trust the certificate authorities in this PEM file for the FCM endpoint (a TLS proxy, a test server)' -r -F
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l concurrency -d 'Requests in flight at once, 1 to 20000 (spread over up to 64 HTTP/2 connections of 100 streams each; 20000 is about what one process can serve, beyond it only memory grows: use shards for more)' -r
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l rate -d 'Messages per second at most, 0 for no cap, up to 100000 (the project quota is 10,000/s unless Google raised it; one process peaks near 33,000/s)' -r
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l targets -d 'How stored device values are read: auto sends a value of an installation ID\'s exact shape (22 URL-safe base64 characters, the first c-f) as "fid" and any other as "token"; token or fid reads every value so' -r -f -a "auto\t'An FID where the value has an FID\'s exact shape, a registration token otherwise'
token\t'Every value is a registration token'
fid\t'Every value is a Firebase installation ID'"
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l timezone -d 'Time zone of slots, weeks and the backend\'s naive datetimes' -r
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l max-attempts -d 'Attempts per message before it counts as failed, 1 to 20' -r
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l backoff -d 'First back-off after a 500/503 without Retry-After, more than 0 (doubles each attempt up to 5m; 10s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l quota-backoff -d 'First back-off after a 429 without Retry-After, more than 0 (doubles each attempt up to 5m; 60s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l max-dead-share -d 'Hold pruning back when dead tokens are more than this percentage of a slot\'s answers (a wrong key or APNs setup looks like mass death; healthy runs see well under 1%)' -r
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l request-timeout -d 'Time limit of one FCM request, more than 0 and at most 10m' -r
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l format -d 'Format of the summary on stdout (html: `report week` only)' -r -f -a "human\t'A few aligned lines for people'
json\t'One JSON object'
html\t'One self-contained page with charts (`report week` only)'"
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l progress -d 'Progress bar on stderr; auto = only when stderr is a terminal' -r -f -a "auto\t'Only when stderr is a terminal'
always\t'Always'
never\t'Never'"
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l metrics-file -d 'Write the job\'s last-run metrics to this Prometheus text file (node_exporter\'s textfile collector), e.g. /var/lib/node_exporter/textfile_collector/wolley-push.prom; every job may share one file' -r -F
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l ping-url -d 'Healthchecks-style ping URL of this job: URL/start when the run starts, URL on success, URL/<exit code> otherwise; a failed ping is only a warning' -r
complete -c wolley-push -n "__fish_wolley_push_needs_command" -l force-prune -d 'Prune every dead token whatever their share (after checking the breaker\'s reason, e.g. the first run after a long time without pruning)'
complete -c wolley-push -n "__fish_wolley_push_needs_command" -s q -l quiet -d 'Print nothing on success (cron mails any output); errors still go to stderr'
complete -c wolley-push -n "__fish_wolley_push_needs_command" -s v -l verbose -d 'More log detail on stderr (-v debug, -vv trace); RUST_LOG overrides'
complete -c wolley-push -n "__fish_wolley_push_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wolley-push -n "__fish_wolley_push_needs_command" -s V -l version -d 'Print version'
complete -c wolley-push -n "__fish_wolley_push_needs_command" -f -a "save-location" -d 'Silent wake-up push to every device with a token (cron: every 30 minutes)'
complete -c wolley-push -n "__fish_wolley_push_needs_command" -f -a "path-daily" -d 'Visible weekly reminder that makes the app upload its GPS logs (cron: Mondays 00:10; --remind, to those whose week has not arrived, Mondays 09:00)'
complete -c wolley-push -n "__fish_wolley_push_needs_command" -f -a "send" -d 'One message to one device, to check a phone or the credentials by hand'
complete -c wolley-push -n "__fish_wolley_push_needs_command" -f -a "stats" -d 'Weekly statistics per user and category, and badges (cron: Mondays 00:30)'
complete -c wolley-push -n "__fish_wolley_push_needs_command" -f -a "migrate" -d 'Create or upgrade the tables wolley-push owns (never touches the backend\'s tables)'
complete -c wolley-push -n "__fish_wolley_push_needs_command" -f -a "doctor" -d 'Check configuration, key, OAuth, FCM, database and schema; one line per check'
complete -c wolley-push -n "__fish_wolley_push_needs_command" -f -a "runs" -d 'The run journal: each job\'s recent slots with status, counts, retry set, owner and heartbeat'
complete -c wolley-push -n "__fish_wolley_push_needs_command" -f -a "report" -d 'Reports on the jobs\' effect: did the wake-ups work?'
complete -c wolley-push -n "__fish_wolley_push_needs_command" -f -a "tokens" -d 'Device tokens: put back tokens that pruning removed'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l tokens-file -d 'Read `token` or `user_id<TAB>token` lines from this file (`-` = stdin) instead of the database' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l slot -d 'The slot to run [default: now\'s half-hour (save-location) or ISO week (path-daily)], e.g. 2026-11-30T14:30 or 2026-W49' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l deadline -d 'Stop sending this long after the start (more than 0, at most 7days); the rest counts as expired and a rerun resumes [default: save-location until its half-hour ends, at most 25m; 6h for path-daily]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l shard -d 'Only users with user_id % N == K, with a lock and journal row of its own' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l shards -d 'Split users into N shards, this run taking shard $JOB_COMPLETION_INDEX (Kubernetes Indexed Job)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l ttl -d 'How long FCM and APNs keep an undelivered wake-up, 1s to 28days (FCM\'s limit; the default is one period: a stale wake-up is useless)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l database-url -d 'MariaDB URL of the Wolley backend, e.g. mysql://wolley:secret@127.0.0.1:3306/wolley' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l credentials -d 'Google service-account JSON key used to obtain FCM access tokens' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l project-id -d 'Firebase project to send through [default: the key\'s project_id]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l fcm-endpoint -d 'Base URL of the FCM HTTP v1 API' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l fcm-ca-file -d 'Also trust the certificate authorities in this PEM file for the FCM endpoint (a TLS proxy, a test server)' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l concurrency -d 'Requests in flight at once, 1 to 20000 (spread over up to 64 HTTP/2 connections of 100 streams each; 20000 is about what one process can serve, beyond it only memory grows: use shards for more)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l rate -d 'Messages per second at most, 0 for no cap, up to 100000 (the project quota is 10,000/s unless Google raised it; one process peaks near 33,000/s)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l targets -d 'How stored device values are read: auto sends a value of an installation ID\'s exact shape (22 URL-safe base64 characters, the first c-f) as "fid" and any other as "token"; token or fid reads every value so' -r -f -a "auto\t'An FID where the value has an FID\'s exact shape, a registration token otherwise'
token\t'Every value is a registration token'
fid\t'Every value is a Firebase installation ID'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l timezone -d 'Time zone of slots, weeks and the backend\'s naive datetimes' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l max-attempts -d 'Attempts per message before it counts as failed, 1 to 20' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l backoff -d 'First back-off after a 500/503 without Retry-After, more than 0 (doubles each attempt up to 5m; 10s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l quota-backoff -d 'First back-off after a 429 without Retry-After, more than 0 (doubles each attempt up to 5m; 60s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l max-dead-share -d 'Hold pruning back when dead tokens are more than this percentage of a slot\'s answers (a wrong key or APNs setup looks like mass death; healthy runs see well under 1%)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l request-timeout -d 'Time limit of one FCM request, more than 0 and at most 10m' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l format -d 'Format of the summary on stdout (html: `report week` only)' -r -f -a "human\t'A few aligned lines for people'
json\t'One JSON object'
html\t'One self-contained page with charts (`report week` only)'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l progress -d 'Progress bar on stderr; auto = only when stderr is a terminal' -r -f -a "auto\t'Only when stderr is a terminal'
always\t'Always'
never\t'Never'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l metrics-file -d 'Write the job\'s last-run metrics to this Prometheus text file (node_exporter\'s textfile collector), e.g. /var/lib/node_exporter/textfile_collector/wolley-push.prom; every job may share one file' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l ping-url -d 'Healthchecks-style ping URL of this job: URL/start when the run starts, URL on success, URL/<exit code> otherwise; a failed ping is only a warning' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l dry-run -d 'Ask FCM to validate each message without delivering it; prune and record nothing'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l print -d 'Write each request body as one JSON line to stdout; no network, no credentials'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l force -d 'Send the slot again even if the journal says it is done'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -l force-prune -d 'Prune every dead token whatever their share (after checking the breaker\'s reason, e.g. the first run after a long time without pruning)'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -s q -l quiet -d 'Print nothing on success (cron mails any output); errors still go to stderr'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -s v -l verbose -d 'More log detail on stderr (-v debug, -vv trace); RUST_LOG overrides'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand save-location" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l tokens-file -d 'Read `token` or `user_id<TAB>token` lines from this file (`-` = stdin) instead of the database' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l slot -d 'The slot to run [default: now\'s half-hour (save-location) or ISO week (path-daily)], e.g. 2026-11-30T14:30 or 2026-W49' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l deadline -d 'Stop sending this long after the start (more than 0, at most 7days); the rest counts as expired and a rerun resumes [default: save-location until its half-hour ends, at most 25m; 6h for path-daily]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l shard -d 'Only users with user_id % N == K, with a lock and journal row of its own' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l shards -d 'Split users into N shards, this run taking shard $JOB_COMPLETION_INDEX (Kubernetes Indexed Job)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l spread -d 'Send the slot\'s messages evenly over this window (0 = as fast as --rate allows). Every phone notified uploads its week to the backend\'s single Django host: spread over 10 minutes, 1M users arrive at ~1,700 uploads/s instead of 9,000/s in under two minutes. A resumed slot sends what is left over what is left of the window' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l title -d 'Notification title' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l body -d 'Notification body [default: 일주일 동안의 기록을 확인해보세요!; for path-daily --remind: 지난주 기록이 아직 올라오지 않았어요. 앱을 열어 확인해보세요!]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l database-url -d 'MariaDB URL of the Wolley backend, e.g. mysql://wolley:secret@127.0.0.1:3306/wolley' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l credentials -d 'Google service-account JSON key used to obtain FCM access tokens' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l project-id -d 'Firebase project to send through [default: the key\'s project_id]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l fcm-endpoint -d 'Base URL of the FCM HTTP v1 API' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l fcm-ca-file -d 'Also trust the certificate authorities in this PEM file for the FCM endpoint (a TLS proxy, a test server)' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l concurrency -d 'Requests in flight at once, 1 to 20000 (spread over up to 64 HTTP/2 connections of 100 streams each; 20000 is about what one process can serve, beyond it only memory grows: use shards for more)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l rate -d 'Messages per second at most, 0 for no cap, up to 100000 (the project quota is 10,000/s unless Google raised it; one process peaks near 33,000/s)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l targets -d 'How stored device values are read: auto sends a value of an installation ID\'s exact shape (22 URL-safe base64 characters, the first c-f) as "fid" and any other as "token"; token or fid reads every value so' -r -f -a "auto\t'An FID where the value has an FID\'s exact shape, a registration token otherwise'
token\t'Every value is a registration token'
fid\t'Every value is a Firebase installation ID'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l timezone -d 'Time zone of slots, weeks and the backend\'s naive datetimes' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l max-attempts -d 'Attempts per message before it counts as failed, 1 to 20' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l backoff -d 'First back-off after a 500/503 without Retry-After, more than 0 (doubles each attempt up to 5m; 10s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l quota-backoff -d 'First back-off after a 429 without Retry-After, more than 0 (doubles each attempt up to 5m; 60s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l max-dead-share -d 'Hold pruning back when dead tokens are more than this percentage of a slot\'s answers (a wrong key or APNs setup looks like mass death; healthy runs see well under 1%)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l request-timeout -d 'Time limit of one FCM request, more than 0 and at most 10m' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l format -d 'Format of the summary on stdout (html: `report week` only)' -r -f -a "human\t'A few aligned lines for people'
json\t'One JSON object'
html\t'One self-contained page with charts (`report week` only)'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l progress -d 'Progress bar on stderr; auto = only when stderr is a terminal' -r -f -a "auto\t'Only when stderr is a terminal'
always\t'Always'
never\t'Never'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l metrics-file -d 'Write the job\'s last-run metrics to this Prometheus text file (node_exporter\'s textfile collector), e.g. /var/lib/node_exporter/textfile_collector/wolley-push.prom; every job may share one file' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l ping-url -d 'Healthchecks-style ping URL of this job: URL/start when the run starts, URL on success, URL/<exit code> otherwise; a failed ping is only a warning' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l dry-run -d 'Ask FCM to validate each message without delivering it; prune and record nothing'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l print -d 'Write each request body as one JSON line to stdout; no network, no credentials'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l force -d 'Send the slot again even if the journal says it is done'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l remind -d 'Send the week\'s reminder instead (cron: Mondays 09:00): only to the users the slot\'s path-daily run reached whose week has not arrived since it started, each once (its own slot, <slot>-remind, and job, path-daily-remind, in the journal). Refused and nothing sent when the slot has no path-daily run (exit 78) or it is still running (exit 75)'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l sound -d 'Play the phone\'s notification sound (off by default: path-daily goes out at ten past midnight, and a chime then wakes people for a reminder that can wait until morning; the 09:00 --remind stays as quiet unless told)'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -l force-prune -d 'Prune every dead token whatever their share (after checking the breaker\'s reason, e.g. the first run after a long time without pruning)'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -s q -l quiet -d 'Print nothing on success (cron mails any output); errors still go to stderr'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -s v -l verbose -d 'More log detail on stderr (-v debug, -vv trace); RUST_LOG overrides'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand path-daily" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l token -d 'The device\'s FCM registration token' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l fid -d 'The device\'s Firebase installation ID (sent as "fid")' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l kind -d 'Which message to send' -r -f -a "save-location\t'The silent wake-up'
path-daily\t'The visible weekly reminder'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l title -d 'Notification title' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l body -d 'Notification body [default: 일주일 동안의 기록을 확인해보세요!; for path-daily --remind: 지난주 기록이 아직 올라오지 않았어요. 앱을 열어 확인해보세요!]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l database-url -d 'MariaDB URL of the Wolley backend, e.g. mysql://wolley:secret@127.0.0.1:3306/wolley' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l credentials -d 'Google service-account JSON key used to obtain FCM access tokens' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l project-id -d 'Firebase project to send through [default: the key\'s project_id]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l fcm-endpoint -d 'Base URL of the FCM HTTP v1 API' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l fcm-ca-file -d 'Also trust the certificate authorities in this PEM file for the FCM endpoint (a TLS proxy, a test server)' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l concurrency -d 'Requests in flight at once, 1 to 20000 (spread over up to 64 HTTP/2 connections of 100 streams each; 20000 is about what one process can serve, beyond it only memory grows: use shards for more)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l rate -d 'Messages per second at most, 0 for no cap, up to 100000 (the project quota is 10,000/s unless Google raised it; one process peaks near 33,000/s)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l targets -d 'How stored device values are read: auto sends a value of an installation ID\'s exact shape (22 URL-safe base64 characters, the first c-f) as "fid" and any other as "token"; token or fid reads every value so' -r -f -a "auto\t'An FID where the value has an FID\'s exact shape, a registration token otherwise'
token\t'Every value is a registration token'
fid\t'Every value is a Firebase installation ID'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l timezone -d 'Time zone of slots, weeks and the backend\'s naive datetimes' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l max-attempts -d 'Attempts per message before it counts as failed, 1 to 20' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l backoff -d 'First back-off after a 500/503 without Retry-After, more than 0 (doubles each attempt up to 5m; 10s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l quota-backoff -d 'First back-off after a 429 without Retry-After, more than 0 (doubles each attempt up to 5m; 60s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l max-dead-share -d 'Hold pruning back when dead tokens are more than this percentage of a slot\'s answers (a wrong key or APNs setup looks like mass death; healthy runs see well under 1%)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l request-timeout -d 'Time limit of one FCM request, more than 0 and at most 10m' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l format -d 'Format of the summary on stdout (html: `report week` only)' -r -f -a "human\t'A few aligned lines for people'
json\t'One JSON object'
html\t'One self-contained page with charts (`report week` only)'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l progress -d 'Progress bar on stderr; auto = only when stderr is a terminal' -r -f -a "auto\t'Only when stderr is a terminal'
always\t'Always'
never\t'Never'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l metrics-file -d 'Write the job\'s last-run metrics to this Prometheus text file (node_exporter\'s textfile collector), e.g. /var/lib/node_exporter/textfile_collector/wolley-push.prom; every job may share one file' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l ping-url -d 'Healthchecks-style ping URL of this job: URL/start when the run starts, URL on success, URL/<exit code> otherwise; a failed ping is only a warning' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l sound -d 'Play the phone\'s notification sound (off by default: path-daily goes out at ten past midnight, and a chime then wakes people for a reminder that can wait until morning; the 09:00 --remind stays as quiet unless told)'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l dry-run -d 'Ask FCM to validate the message without delivering it'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l print -d 'Write the request body to stdout instead of sending it'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -l force-prune -d 'Prune every dead token whatever their share (after checking the breaker\'s reason, e.g. the first run after a long time without pruning)'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -s q -l quiet -d 'Print nothing on success (cron mails any output); errors still go to stderr'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -s v -l verbose -d 'More log detail on stderr (-v debug, -vv trace); RUST_LOG overrides'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand send" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l database-url -d 'MariaDB URL of the Wolley backend, e.g. mysql://wolley:secret@127.0.0.1:3306/wolley' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l credentials -d 'Google service-account JSON key used to obtain FCM access tokens' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l project-id -d 'Firebase project to send through [default: the key\'s project_id]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l fcm-endpoint -d 'Base URL of the FCM HTTP v1 API' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l fcm-ca-file -d 'Also trust the certificate authorities in this PEM file for the FCM endpoint (a TLS proxy, a test server)' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l concurrency -d 'Requests in flight at once, 1 to 20000 (spread over up to 64 HTTP/2 connections of 100 streams each; 20000 is about what one process can serve, beyond it only memory grows: use shards for more)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l rate -d 'Messages per second at most, 0 for no cap, up to 100000 (the project quota is 10,000/s unless Google raised it; one process peaks near 33,000/s)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l targets -d 'How stored device values are read: auto sends a value of an installation ID\'s exact shape (22 URL-safe base64 characters, the first c-f) as "fid" and any other as "token"; token or fid reads every value so' -r -f -a "auto\t'An FID where the value has an FID\'s exact shape, a registration token otherwise'
token\t'Every value is a registration token'
fid\t'Every value is a Firebase installation ID'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l timezone -d 'Time zone of slots, weeks and the backend\'s naive datetimes' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l max-attempts -d 'Attempts per message before it counts as failed, 1 to 20' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l backoff -d 'First back-off after a 500/503 without Retry-After, more than 0 (doubles each attempt up to 5m; 10s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l quota-backoff -d 'First back-off after a 429 without Retry-After, more than 0 (doubles each attempt up to 5m; 60s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l max-dead-share -d 'Hold pruning back when dead tokens are more than this percentage of a slot\'s answers (a wrong key or APNs setup looks like mass death; healthy runs see well under 1%)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l request-timeout -d 'Time limit of one FCM request, more than 0 and at most 10m' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l format -d 'Format of the summary on stdout (html: `report week` only)' -r -f -a "human\t'A few aligned lines for people'
json\t'One JSON object'
html\t'One self-contained page with charts (`report week` only)'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l progress -d 'Progress bar on stderr; auto = only when stderr is a terminal' -r -f -a "auto\t'Only when stderr is a terminal'
always\t'Always'
never\t'Never'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l metrics-file -d 'Write the job\'s last-run metrics to this Prometheus text file (node_exporter\'s textfile collector), e.g. /var/lib/node_exporter/textfile_collector/wolley-push.prom; every job may share one file' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l ping-url -d 'Healthchecks-style ping URL of this job: URL/start when the run starts, URL on success, URL/<exit code> otherwise; a failed ping is only a warning' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -l force-prune -d 'Prune every dead token whatever their share (after checking the breaker\'s reason, e.g. the first run after a long time without pruning)'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -s q -l quiet -d 'Print nothing on success (cron mails any output); errors still go to stderr'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -s v -l verbose -d 'More log detail on stderr (-v debug, -vv trace); RUST_LOG overrides'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and not __fish_seen_subcommand_from weekly" -f -a "weekly" -d 'Aggregate one finished ISO week per user and category and award badges'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l week -d 'ISO week to aggregate [default: the last finished week in --timezone]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l badges -d 'Badge rules (TOML) replacing the built-in set' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l user -d 'Print this one user\'s week instead of the summary table' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l database-url -d 'MariaDB URL of the Wolley backend, e.g. mysql://wolley:secret@127.0.0.1:3306/wolley' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l credentials -d 'Google service-account JSON key used to obtain FCM access tokens' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l project-id -d 'Firebase project to send through [default: the key\'s project_id]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l fcm-endpoint -d 'Base URL of the FCM HTTP v1 API' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l fcm-ca-file -d 'Also trust the certificate authorities in this PEM file for the FCM endpoint (a TLS proxy, a test server)' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l concurrency -d 'Requests in flight at once, 1 to 20000 (spread over up to 64 HTTP/2 connections of 100 streams each; 20000 is about what one process can serve, beyond it only memory grows: use shards for more)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l rate -d 'Messages per second at most, 0 for no cap, up to 100000 (the project quota is 10,000/s unless Google raised it; one process peaks near 33,000/s)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l targets -d 'How stored device values are read: auto sends a value of an installation ID\'s exact shape (22 URL-safe base64 characters, the first c-f) as "fid" and any other as "token"; token or fid reads every value so' -r -f -a "auto\t'An FID where the value has an FID\'s exact shape, a registration token otherwise'
token\t'Every value is a registration token'
fid\t'Every value is a Firebase installation ID'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l timezone -d 'Time zone of slots, weeks and the backend\'s naive datetimes' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l max-attempts -d 'Attempts per message before it counts as failed, 1 to 20' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l backoff -d 'First back-off after a 500/503 without Retry-After, more than 0 (doubles each attempt up to 5m; 10s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l quota-backoff -d 'First back-off after a 429 without Retry-After, more than 0 (doubles each attempt up to 5m; 60s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l max-dead-share -d 'Hold pruning back when dead tokens are more than this percentage of a slot\'s answers (a wrong key or APNs setup looks like mass death; healthy runs see well under 1%)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l request-timeout -d 'Time limit of one FCM request, more than 0 and at most 10m' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l format -d 'Format of the summary on stdout (html: `report week` only)' -r -f -a "human\t'A few aligned lines for people'
json\t'One JSON object'
html\t'One self-contained page with charts (`report week` only)'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l progress -d 'Progress bar on stderr; auto = only when stderr is a terminal' -r -f -a "auto\t'Only when stderr is a terminal'
always\t'Always'
never\t'Never'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l metrics-file -d 'Write the job\'s last-run metrics to this Prometheus text file (node_exporter\'s textfile collector), e.g. /var/lib/node_exporter/textfile_collector/wolley-push.prom; every job may share one file' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l ping-url -d 'Healthchecks-style ping URL of this job: URL/start when the run starts, URL on success, URL/<exit code> otherwise; a failed ping is only a warning' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l notify -d 'After awarding, send each user who earned a badge one notification'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l dry-run -d 'With --notify: ask FCM to validate the notifications without delivering them'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l force -d 'With --notify: notify every winner of every badge of the week again, even those already told'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l full -d 'Recompute every user of the week (a new version of the week, published whole), not only the users whose rows of the week changed since it was last computed. Use it after changing the badge rules. The first run of a week is always full'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -l force-prune -d 'Prune every dead token whatever their share (after checking the breaker\'s reason, e.g. the first run after a long time without pruning)'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -s q -l quiet -d 'Print nothing on success (cron mails any output); errors still go to stderr'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -s v -l verbose -d 'More log detail on stderr (-v debug, -vv trace); RUST_LOG overrides'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand stats; and __fish_seen_subcommand_from weekly" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l database-url -d 'MariaDB URL of the Wolley backend, e.g. mysql://wolley:secret@127.0.0.1:3306/wolley' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l credentials -d 'Google service-account JSON key used to obtain FCM access tokens' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l project-id -d 'Firebase project to send through [default: the key\'s project_id]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l fcm-endpoint -d 'Base URL of the FCM HTTP v1 API' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l fcm-ca-file -d 'Also trust the certificate authorities in this PEM file for the FCM endpoint (a TLS proxy, a test server)' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l concurrency -d 'Requests in flight at once, 1 to 20000 (spread over up to 64 HTTP/2 connections of 100 streams each; 20000 is about what one process can serve, beyond it only memory grows: use shards for more)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l rate -d 'Messages per second at most, 0 for no cap, up to 100000 (the project quota is 10,000/s unless Google raised it; one process peaks near 33,000/s)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l targets -d 'How stored device values are read: auto sends a value of an installation ID\'s exact shape (22 URL-safe base64 characters, the first c-f) as "fid" and any other as "token"; token or fid reads every value so' -r -f -a "auto\t'An FID where the value has an FID\'s exact shape, a registration token otherwise'
token\t'Every value is a registration token'
fid\t'Every value is a Firebase installation ID'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l timezone -d 'Time zone of slots, weeks and the backend\'s naive datetimes' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l max-attempts -d 'Attempts per message before it counts as failed, 1 to 20' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l backoff -d 'First back-off after a 500/503 without Retry-After, more than 0 (doubles each attempt up to 5m; 10s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l quota-backoff -d 'First back-off after a 429 without Retry-After, more than 0 (doubles each attempt up to 5m; 60s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l max-dead-share -d 'Hold pruning back when dead tokens are more than this percentage of a slot\'s answers (a wrong key or APNs setup looks like mass death; healthy runs see well under 1%)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l request-timeout -d 'Time limit of one FCM request, more than 0 and at most 10m' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l format -d 'Format of the summary on stdout (html: `report week` only)' -r -f -a "human\t'A few aligned lines for people'
json\t'One JSON object'
html\t'One self-contained page with charts (`report week` only)'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l progress -d 'Progress bar on stderr; auto = only when stderr is a terminal' -r -f -a "auto\t'Only when stderr is a terminal'
always\t'Always'
never\t'Never'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l metrics-file -d 'Write the job\'s last-run metrics to this Prometheus text file (node_exporter\'s textfile collector), e.g. /var/lib/node_exporter/textfile_collector/wolley-push.prom; every job may share one file' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l ping-url -d 'Healthchecks-style ping URL of this job: URL/start when the run starts, URL on success, URL/<exit code> otherwise; a failed ping is only a warning' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -l force-prune -d 'Prune every dead token whatever their share (after checking the breaker\'s reason, e.g. the first run after a long time without pruning)'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -s q -l quiet -d 'Print nothing on success (cron mails any output); errors still go to stderr'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -s v -l verbose -d 'More log detail on stderr (-v debug, -vv trace); RUST_LOG overrides'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l database-url -d 'MariaDB URL of the Wolley backend, e.g. mysql://wolley:secret@127.0.0.1:3306/wolley' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l credentials -d 'Google service-account JSON key used to obtain FCM access tokens' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l project-id -d 'Firebase project to send through [default: the key\'s project_id]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l fcm-endpoint -d 'Base URL of the FCM HTTP v1 API' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l fcm-ca-file -d 'Also trust the certificate authorities in this PEM file for the FCM endpoint (a TLS proxy, a test server)' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l concurrency -d 'Requests in flight at once, 1 to 20000 (spread over up to 64 HTTP/2 connections of 100 streams each; 20000 is about what one process can serve, beyond it only memory grows: use shards for more)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l rate -d 'Messages per second at most, 0 for no cap, up to 100000 (the project quota is 10,000/s unless Google raised it; one process peaks near 33,000/s)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l targets -d 'How stored device values are read: auto sends a value of an installation ID\'s exact shape (22 URL-safe base64 characters, the first c-f) as "fid" and any other as "token"; token or fid reads every value so' -r -f -a "auto\t'An FID where the value has an FID\'s exact shape, a registration token otherwise'
token\t'Every value is a registration token'
fid\t'Every value is a Firebase installation ID'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l timezone -d 'Time zone of slots, weeks and the backend\'s naive datetimes' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l max-attempts -d 'Attempts per message before it counts as failed, 1 to 20' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l backoff -d 'First back-off after a 500/503 without Retry-After, more than 0 (doubles each attempt up to 5m; 10s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l quota-backoff -d 'First back-off after a 429 without Retry-After, more than 0 (doubles each attempt up to 5m; 60s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l max-dead-share -d 'Hold pruning back when dead tokens are more than this percentage of a slot\'s answers (a wrong key or APNs setup looks like mass death; healthy runs see well under 1%)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l request-timeout -d 'Time limit of one FCM request, more than 0 and at most 10m' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l format -d 'Format of the summary on stdout (html: `report week` only)' -r -f -a "human\t'A few aligned lines for people'
json\t'One JSON object'
html\t'One self-contained page with charts (`report week` only)'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l progress -d 'Progress bar on stderr; auto = only when stderr is a terminal' -r -f -a "auto\t'Only when stderr is a terminal'
always\t'Always'
never\t'Never'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l metrics-file -d 'Write the job\'s last-run metrics to this Prometheus text file (node_exporter\'s textfile collector), e.g. /var/lib/node_exporter/textfile_collector/wolley-push.prom; every job may share one file' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l ping-url -d 'Healthchecks-style ping URL of this job: URL/start when the run starts, URL on success, URL/<exit code> otherwise; a failed ping is only a warning' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -l force-prune -d 'Prune every dead token whatever their share (after checking the breaker\'s reason, e.g. the first run after a long time without pruning)'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -s q -l quiet -d 'Print nothing on success (cron mails any output); errors still go to stderr'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -s v -l verbose -d 'More log detail on stderr (-v debug, -vv trace); RUST_LOG overrides'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l job -d 'Only this job (save-location, path-daily, stats-notify)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l last -d 'Slots shown per job' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l database-url -d 'MariaDB URL of the Wolley backend, e.g. mysql://wolley:secret@127.0.0.1:3306/wolley' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l credentials -d 'Google service-account JSON key used to obtain FCM access tokens' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l project-id -d 'Firebase project to send through [default: the key\'s project_id]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l fcm-endpoint -d 'Base URL of the FCM HTTP v1 API' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l fcm-ca-file -d 'Also trust the certificate authorities in this PEM file for the FCM endpoint (a TLS proxy, a test server)' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l concurrency -d 'Requests in flight at once, 1 to 20000 (spread over up to 64 HTTP/2 connections of 100 streams each; 20000 is about what one process can serve, beyond it only memory grows: use shards for more)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l rate -d 'Messages per second at most, 0 for no cap, up to 100000 (the project quota is 10,000/s unless Google raised it; one process peaks near 33,000/s)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l targets -d 'How stored device values are read: auto sends a value of an installation ID\'s exact shape (22 URL-safe base64 characters, the first c-f) as "fid" and any other as "token"; token or fid reads every value so' -r -f -a "auto\t'An FID where the value has an FID\'s exact shape, a registration token otherwise'
token\t'Every value is a registration token'
fid\t'Every value is a Firebase installation ID'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l timezone -d 'Time zone of slots, weeks and the backend\'s naive datetimes' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l max-attempts -d 'Attempts per message before it counts as failed, 1 to 20' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l backoff -d 'First back-off after a 500/503 without Retry-After, more than 0 (doubles each attempt up to 5m; 10s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l quota-backoff -d 'First back-off after a 429 without Retry-After, more than 0 (doubles each attempt up to 5m; 60s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l max-dead-share -d 'Hold pruning back when dead tokens are more than this percentage of a slot\'s answers (a wrong key or APNs setup looks like mass death; healthy runs see well under 1%)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l request-timeout -d 'Time limit of one FCM request, more than 0 and at most 10m' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l format -d 'Format of the summary on stdout (html: `report week` only)' -r -f -a "human\t'A few aligned lines for people'
json\t'One JSON object'
html\t'One self-contained page with charts (`report week` only)'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l progress -d 'Progress bar on stderr; auto = only when stderr is a terminal' -r -f -a "auto\t'Only when stderr is a terminal'
always\t'Always'
never\t'Never'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l metrics-file -d 'Write the job\'s last-run metrics to this Prometheus text file (node_exporter\'s textfile collector), e.g. /var/lib/node_exporter/textfile_collector/wolley-push.prom; every job may share one file' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l ping-url -d 'Healthchecks-style ping URL of this job: URL/start when the run starts, URL on success, URL/<exit code> otherwise; a failed ping is only a warning' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -l force-prune -d 'Prune every dead token whatever their share (after checking the breaker\'s reason, e.g. the first run after a long time without pruning)'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -s q -l quiet -d 'Print nothing on success (cron mails any output); errors still go to stderr'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -s v -l verbose -d 'More log detail on stderr (-v debug, -vv trace); RUST_LOG overrides'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand runs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l database-url -d 'MariaDB URL of the Wolley backend, e.g. mysql://wolley:secret@127.0.0.1:3306/wolley' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l credentials -d 'Google service-account JSON key used to obtain FCM access tokens' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l project-id -d 'Firebase project to send through [default: the key\'s project_id]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l fcm-endpoint -d 'Base URL of the FCM HTTP v1 API' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l fcm-ca-file -d 'Also trust the certificate authorities in this PEM file for the FCM endpoint (a TLS proxy, a test server)' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l concurrency -d 'Requests in flight at once, 1 to 20000 (spread over up to 64 HTTP/2 connections of 100 streams each; 20000 is about what one process can serve, beyond it only memory grows: use shards for more)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l rate -d 'Messages per second at most, 0 for no cap, up to 100000 (the project quota is 10,000/s unless Google raised it; one process peaks near 33,000/s)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l targets -d 'How stored device values are read: auto sends a value of an installation ID\'s exact shape (22 URL-safe base64 characters, the first c-f) as "fid" and any other as "token"; token or fid reads every value so' -r -f -a "auto\t'An FID where the value has an FID\'s exact shape, a registration token otherwise'
token\t'Every value is a registration token'
fid\t'Every value is a Firebase installation ID'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l timezone -d 'Time zone of slots, weeks and the backend\'s naive datetimes' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l max-attempts -d 'Attempts per message before it counts as failed, 1 to 20' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l backoff -d 'First back-off after a 500/503 without Retry-After, more than 0 (doubles each attempt up to 5m; 10s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l quota-backoff -d 'First back-off after a 429 without Retry-After, more than 0 (doubles each attempt up to 5m; 60s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l max-dead-share -d 'Hold pruning back when dead tokens are more than this percentage of a slot\'s answers (a wrong key or APNs setup looks like mass death; healthy runs see well under 1%)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l request-timeout -d 'Time limit of one FCM request, more than 0 and at most 10m' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l format -d 'Format of the summary on stdout (html: `report week` only)' -r -f -a "human\t'A few aligned lines for people'
json\t'One JSON object'
html\t'One self-contained page with charts (`report week` only)'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l progress -d 'Progress bar on stderr; auto = only when stderr is a terminal' -r -f -a "auto\t'Only when stderr is a terminal'
always\t'Always'
never\t'Never'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l metrics-file -d 'Write the job\'s last-run metrics to this Prometheus text file (node_exporter\'s textfile collector), e.g. /var/lib/node_exporter/textfile_collector/wolley-push.prom; every job may share one file' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l ping-url -d 'Healthchecks-style ping URL of this job: URL/start when the run starts, URL on success, URL/<exit code> otherwise; a failed ping is only a warning' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -l force-prune -d 'Prune every dead token whatever their share (after checking the breaker\'s reason, e.g. the first run after a long time without pruning)'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -s q -l quiet -d 'Print nothing on success (cron mails any output); errors still go to stderr'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -s v -l verbose -d 'More log detail on stderr (-v debug, -vv trace); RUST_LOG overrides'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and not __fish_seen_subcommand_from week" -f -a "week" -d 'The week\'s wake-ups: wake rate per slot, deliveries and never-woke users (reads only)'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l week -d 'ISO week to report [default: the last finished week in --timezone]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l output -d 'Write the report to this file instead of stdout (replaced whole, never half-written)' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l wake-window -d 'How long after a push a GPS point counts as woken by it (and before it, as the baseline); more than 0, at most 30m (one slot)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l database-url -d 'MariaDB URL of the Wolley backend, e.g. mysql://wolley:secret@127.0.0.1:3306/wolley' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l credentials -d 'Google service-account JSON key used to obtain FCM access tokens' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l project-id -d 'Firebase project to send through [default: the key\'s project_id]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l fcm-endpoint -d 'Base URL of the FCM HTTP v1 API' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l fcm-ca-file -d 'Also trust the certificate authorities in this PEM file for the FCM endpoint (a TLS proxy, a test server)' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l concurrency -d 'Requests in flight at once, 1 to 20000 (spread over up to 64 HTTP/2 connections of 100 streams each; 20000 is about what one process can serve, beyond it only memory grows: use shards for more)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l rate -d 'Messages per second at most, 0 for no cap, up to 100000 (the project quota is 10,000/s unless Google raised it; one process peaks near 33,000/s)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l targets -d 'How stored device values are read: auto sends a value of an installation ID\'s exact shape (22 URL-safe base64 characters, the first c-f) as "fid" and any other as "token"; token or fid reads every value so' -r -f -a "auto\t'An FID where the value has an FID\'s exact shape, a registration token otherwise'
token\t'Every value is a registration token'
fid\t'Every value is a Firebase installation ID'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l timezone -d 'Time zone of slots, weeks and the backend\'s naive datetimes' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l max-attempts -d 'Attempts per message before it counts as failed, 1 to 20' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l backoff -d 'First back-off after a 500/503 without Retry-After, more than 0 (doubles each attempt up to 5m; 10s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l quota-backoff -d 'First back-off after a 429 without Retry-After, more than 0 (doubles each attempt up to 5m; 60s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l max-dead-share -d 'Hold pruning back when dead tokens are more than this percentage of a slot\'s answers (a wrong key or APNs setup looks like mass death; healthy runs see well under 1%)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l request-timeout -d 'Time limit of one FCM request, more than 0 and at most 10m' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l format -d 'Format of the summary on stdout (html: `report week` only)' -r -f -a "human\t'A few aligned lines for people'
json\t'One JSON object'
html\t'One self-contained page with charts (`report week` only)'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l progress -d 'Progress bar on stderr; auto = only when stderr is a terminal' -r -f -a "auto\t'Only when stderr is a terminal'
always\t'Always'
never\t'Never'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l metrics-file -d 'Write the job\'s last-run metrics to this Prometheus text file (node_exporter\'s textfile collector), e.g. /var/lib/node_exporter/textfile_collector/wolley-push.prom; every job may share one file' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l ping-url -d 'Healthchecks-style ping URL of this job: URL/start when the run starts, URL on success, URL/<exit code> otherwise; a failed ping is only a warning' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -l force-prune -d 'Prune every dead token whatever their share (after checking the breaker\'s reason, e.g. the first run after a long time without pruning)'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -s q -l quiet -d 'Print nothing on success (cron mails any output); errors still go to stderr'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -s v -l verbose -d 'More log detail on stderr (-v debug, -vv trace); RUST_LOG overrides'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand report; and __fish_seen_subcommand_from week" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l database-url -d 'MariaDB URL of the Wolley backend, e.g. mysql://wolley:secret@127.0.0.1:3306/wolley' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l credentials -d 'Google service-account JSON key used to obtain FCM access tokens' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l project-id -d 'Firebase project to send through [default: the key\'s project_id]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l fcm-endpoint -d 'Base URL of the FCM HTTP v1 API' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l fcm-ca-file -d 'Also trust the certificate authorities in this PEM file for the FCM endpoint (a TLS proxy, a test server)' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l concurrency -d 'Requests in flight at once, 1 to 20000 (spread over up to 64 HTTP/2 connections of 100 streams each; 20000 is about what one process can serve, beyond it only memory grows: use shards for more)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l rate -d 'Messages per second at most, 0 for no cap, up to 100000 (the project quota is 10,000/s unless Google raised it; one process peaks near 33,000/s)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l targets -d 'How stored device values are read: auto sends a value of an installation ID\'s exact shape (22 URL-safe base64 characters, the first c-f) as "fid" and any other as "token"; token or fid reads every value so' -r -f -a "auto\t'An FID where the value has an FID\'s exact shape, a registration token otherwise'
token\t'Every value is a registration token'
fid\t'Every value is a Firebase installation ID'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l timezone -d 'Time zone of slots, weeks and the backend\'s naive datetimes' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l max-attempts -d 'Attempts per message before it counts as failed, 1 to 20' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l backoff -d 'First back-off after a 500/503 without Retry-After, more than 0 (doubles each attempt up to 5m; 10s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l quota-backoff -d 'First back-off after a 429 without Retry-After, more than 0 (doubles each attempt up to 5m; 60s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l max-dead-share -d 'Hold pruning back when dead tokens are more than this percentage of a slot\'s answers (a wrong key or APNs setup looks like mass death; healthy runs see well under 1%)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l request-timeout -d 'Time limit of one FCM request, more than 0 and at most 10m' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l format -d 'Format of the summary on stdout (html: `report week` only)' -r -f -a "human\t'A few aligned lines for people'
json\t'One JSON object'
html\t'One self-contained page with charts (`report week` only)'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l progress -d 'Progress bar on stderr; auto = only when stderr is a terminal' -r -f -a "auto\t'Only when stderr is a terminal'
always\t'Always'
never\t'Never'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l metrics-file -d 'Write the job\'s last-run metrics to this Prometheus text file (node_exporter\'s textfile collector), e.g. /var/lib/node_exporter/textfile_collector/wolley-push.prom; every job may share one file' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l ping-url -d 'Healthchecks-style ping URL of this job: URL/start when the run starts, URL on success, URL/<exit code> otherwise; a failed ping is only a warning' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -l force-prune -d 'Prune every dead token whatever their share (after checking the breaker\'s reason, e.g. the first run after a long time without pruning)'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -s q -l quiet -d 'Print nothing on success (cron mails any output); errors still go to stderr'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -s v -l verbose -d 'More log detail on stderr (-v debug, -vv trace); RUST_LOG overrides'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and not __fish_seen_subcommand_from restore" -f -a "restore" -d 'Put back the tokens a run pruned, where the user still has no token'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l job -d 'The job whose prunes are put back' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l slot -d 'The slot whose prunes are put back (needs --job), e.g. 2026-W49 or 2026-11-30T14:30' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l shard -d 'Only this shard of the slot' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l since -d 'Every prune since this time: RFC 3339, or YYYY-MM-DD[THH:MM] in --timezone' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l database-url -d 'MariaDB URL of the Wolley backend, e.g. mysql://wolley:secret@127.0.0.1:3306/wolley' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l credentials -d 'Google service-account JSON key used to obtain FCM access tokens' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l project-id -d 'Firebase project to send through [default: the key\'s project_id]' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l fcm-endpoint -d 'Base URL of the FCM HTTP v1 API' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l fcm-ca-file -d 'Also trust the certificate authorities in this PEM file for the FCM endpoint (a TLS proxy, a test server)' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l concurrency -d 'Requests in flight at once, 1 to 20000 (spread over up to 64 HTTP/2 connections of 100 streams each; 20000 is about what one process can serve, beyond it only memory grows: use shards for more)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l rate -d 'Messages per second at most, 0 for no cap, up to 100000 (the project quota is 10,000/s unless Google raised it; one process peaks near 33,000/s)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l targets -d 'How stored device values are read: auto sends a value of an installation ID\'s exact shape (22 URL-safe base64 characters, the first c-f) as "fid" and any other as "token"; token or fid reads every value so' -r -f -a "auto\t'An FID where the value has an FID\'s exact shape, a registration token otherwise'
token\t'Every value is a registration token'
fid\t'Every value is a Firebase installation ID'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l timezone -d 'Time zone of slots, weeks and the backend\'s naive datetimes' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l max-attempts -d 'Attempts per message before it counts as failed, 1 to 20' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l backoff -d 'First back-off after a 500/503 without Retry-After, more than 0 (doubles each attempt up to 5m; 10s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l quota-backoff -d 'First back-off after a 429 without Retry-After, more than 0 (doubles each attempt up to 5m; 60s is Google\'s minimum)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l max-dead-share -d 'Hold pruning back when dead tokens are more than this percentage of a slot\'s answers (a wrong key or APNs setup looks like mass death; healthy runs see well under 1%)' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l request-timeout -d 'Time limit of one FCM request, more than 0 and at most 10m' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l format -d 'Format of the summary on stdout (html: `report week` only)' -r -f -a "human\t'A few aligned lines for people'
json\t'One JSON object'
html\t'One self-contained page with charts (`report week` only)'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l progress -d 'Progress bar on stderr; auto = only when stderr is a terminal' -r -f -a "auto\t'Only when stderr is a terminal'
always\t'Always'
never\t'Never'"
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l metrics-file -d 'Write the job\'s last-run metrics to this Prometheus text file (node_exporter\'s textfile collector), e.g. /var/lib/node_exporter/textfile_collector/wolley-push.prom; every job may share one file' -r -F
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l ping-url -d 'Healthchecks-style ping URL of this job: URL/start when the run starts, URL on success, URL/<exit code> otherwise; a failed ping is only a warning' -r
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -l force-prune -d 'Prune every dead token whatever their share (after checking the breaker\'s reason, e.g. the first run after a long time without pruning)'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -s q -l quiet -d 'Print nothing on success (cron mails any output); errors still go to stderr'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -s v -l verbose -d 'More log detail on stderr (-v debug, -vv trace); RUST_LOG overrides'
complete -c wolley-push -n "__fish_wolley_push_using_subcommand tokens; and __fish_seen_subcommand_from restore" -s h -l help -d 'Print help (see more with \'--help\')'
