//! `path-daily --spread`: the slot's messages go out evenly over the window, so the backend
//! receives the uploads they trigger at about N/window per second. A spread run is slow by
//! design: a loaded machine shows as a run that takes longer, so the bounds below allow lateness
//! and check only what the spread promises.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Ran, World};

const USERS: u32 = 3000;

fn world() -> World {
    let world = World::new().with_db();
    world.db().add_numbered_users(USERS);
    world
}

/// Seconds between the first and the last request the fake received since request `from`.
fn span(world: &World, from: usize) -> Duration {
    let requests = world.fcm.requests();
    let times: Vec<Instant> = requests[from..].iter().map(|r| r.at).collect();
    *times.last().unwrap() - times[0]
}

/// The most requests the fake received in any one second, counted in whole seconds from the
/// first request.
fn busiest_second(world: &World) -> usize {
    let times: Vec<Instant> = world.fcm.requests().iter().map(|r| r.at).collect();
    let mut per_second = std::collections::BTreeMap::<u64, usize>::new();
    for at in &times {
        *per_second.entry((*at - times[0]).as_secs()).or_default() += 1;
    }
    per_second.into_values().max().unwrap_or(0)
}

#[test]
fn a_spread_slot_sends_evenly_over_its_window() {
    let world = world();
    let summary = world.run(["path-daily", "--spread", "30s", "--format", "json"]).exits(0).summary();
    assert_eq!(summary["sent"], Value::from(USERS));
    assert_eq!(summary["pace_per_sec"].as_f64().map(f64::round), Some(100.0), "{summary}");
    // 100 messages a second; ~120% of that in any one second (the rule) allows for a
    // late tick that sends two at once.
    let busiest = busiest_second(&world);
    assert!(busiest <= 120, "{busiest} requests within one second");
    let span = span(&world, 0);
    assert!(span >= Duration::from_secs(27) && span <= Duration::from_secs(33), "sent over {span:?}");
}

#[test]
fn a_spread_slot_stopped_halfway_spreads_the_rest_over_what_is_left_of_its_window() {
    let world = world();
    let started = Instant::now();
    let child = world.std_cmd().args(["path-daily", "--spread", "30s"]).spawn().unwrap();
    assert!(world.fcm.wait_for_deliveries(1500, Duration::from_secs(60)), "the run did not get going");
    let killed =
        std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    Ran::wait(child).exits(3);
    let first_run = world.fcm.requests().len();
    // A rerun that comes a while later has less of the window left than the first run had
    // after it: it must catch up, not keep the first run's pace.
    std::thread::sleep(Duration::from_secs(6));
    let into_window = started.elapsed();
    world.run(["path-daily", "--spread", "30s"]).exits(0);
    assert_eq!(world.fcm.delivered_tokens().len(), USERS as usize, "every user reached");
    assert_eq!(world.fcm.total_deliveries(), u64::from(USERS), "and only once");
    // The rest of the window, not none of it (a burst) and not all of it again: the rerun ends
    // about when the window does. Lateness only makes it longer, within the upper margin.
    let left = Duration::from_secs(30).saturating_sub(into_window);
    let rerun_span = span(&world, first_run);
    let said = format!("the rest went out over {rerun_span:?}, {left:?} of the window were left");
    assert!(rerun_span >= left.mul_f64(0.6), "{said}");
    assert!(rerun_span <= left + Duration::from_secs(4), "{said}");
}
