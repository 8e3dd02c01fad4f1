//! Integration tests: the real binary against a real MariaDB and the in-repo fake FCM.

mod harness;
mod load;
mod proxy;

mod architecture;
mod bad_inputs;
mod closed_pipes;
mod credential_faults;
mod database_faults;
mod deploy;
mod deploy_checks;
mod docs_links;
mod doctor;
mod fcm_faults;
mod fid_targets;
mod flag_bounds;
mod generated;
mod ledger;
mod messages;
mod metrics;
mod migrate_faults;
mod panics;
mod pings;
mod pruning;
mod remind;
mod report;
mod responses;
mod retries;
mod run_safety;
mod secrets;
mod spread;
mod stats;
mod targeting;
mod workers;
