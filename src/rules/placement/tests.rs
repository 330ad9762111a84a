use super::*;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

fn server(listeners: u32, capacity: u32) -> Candidate<'static> {
    Candidate {
        healthy: true,
        carries: true,
        listeners,
        pending: 0,
        capacity,
        weight: 1,
        region: None,
    }
}

#[test]
fn the_most_free_room_wins_and_ties_go_to_the_first() {
    let down = Candidate {
        healthy: false,
        ..server(0, 1000)
    };
    let elsewhere = Candidate {
        carries: false,
        ..server(0, 1000)
    };
    let draining = Candidate {
        weight: 0,
        ..server(0, 1000)
    };
    let heavy = Candidate {
        weight: 3,
        ..server(90, 100)
    };
    let on_the_way = Candidate {
        pending: 45,
        ..server(0, 50)
    };
    for (candidates, region, want) in [
        (
            vec![server(10, 100), server(10, 50)],
            None,
            Placement::To(0),
        ),
        (
            vec![server(10, 50), server(10, 100)],
            None,
            Placement::To(1),
        ),
        (vec![server(0, 50), server(0, 50)], None, Placement::To(0)),
        // Pending listeners count as there.
        (vec![on_the_way, server(40, 50)], None, Placement::To(1)),
        // A weight multiplies the free room: 10 × 3 beats 20.
        (vec![server(30, 50), heavy], None, Placement::To(1)),
        (vec![down, server(99, 100)], None, Placement::To(1)),
        (vec![elsewhere, server(99, 100)], None, Placement::To(1)),
        (vec![draining, server(99, 100)], None, Placement::To(1)),
        (
            vec![server(100, 100), server(120, 100)],
            None,
            Placement::Full,
        ),
        (vec![draining], None, Placement::Full),
        (vec![down, server(100, 100)], None, Placement::Full),
        (vec![down, down], None, Placement::Unhealthy),
        (vec![elsewhere, elsewhere], None, Placement::NotOnAir),
        (vec![], None, Placement::NotOnAir),
    ] {
        assert_eq!(place(&candidates, region), want, "{candidates:?}");
    }
}

#[test]
fn a_region_is_preferred_while_one_of_its_servers_has_room() {
    let eu = |listeners| Candidate {
        region: Some("eu"),
        ..server(listeners, 100)
    };
    let us = Candidate {
        region: Some("us"),
        ..server(0, 1000)
    };
    assert_eq!(place(&[us, eu(50), eu(60)], Some("eu")), Placement::To(1));
    assert_eq!(place(&[us, eu(50)], None), Placement::To(0));
    // Full in the region: anywhere else with room.
    assert_eq!(place(&[us, eu(100)], Some("eu")), Placement::To(0));
    assert_eq!(place(&[us, eu(50)], Some("asia")), Placement::To(0));
}

#[test]
fn a_burst_fills_servers_towards_full_together() {
    // Free room 25 and 15: the first ten go to the roomier one, then they alternate, and both
    // end with the same room left.
    let mut servers = [server(0, 25), server(0, 15)];
    let mut placed = [0u32; 2];
    for _ in 0..30 {
        let Placement::To(i) = place(&servers, None) else {
            panic!("room left")
        };
        servers[i].pending += 1;
        placed[i] += 1;
    }
    assert_eq!(placed, [20, 10]);
    assert_eq!(place(&servers, None), Placement::To(0));
    for _ in 0..10 {
        let Placement::To(i) = place(&servers, None) else {
            panic!("room left")
        };
        servers[i].pending += 1;
    }
    assert_eq!(place(&servers, None), Placement::Full);
}

#[test]
fn listeners_on_their_way_are_pending_until_they_arrive_or_the_ttl_passes() {
    let ttl = Duration::from_secs(5);
    let sent = [
        Sent {
            at: at(0),
            joins: 7,
        },
        Sent {
            at: at(1),
            joins: 7,
        },
        Sent {
            at: at(2),
            joins: 8,
        },
    ];
    for (joins, now, want) in [
        (7, at(2), 3),
        // One of them arrived (or somebody else joined): one fewer on the way.
        (8, at(2), 2),
        (10, at(2), 0),
        (20, at(2), 0),
        // The first two are past the ttl: only the third is still expected, and the joins
        // counted from its own mark.
        (8, at(6), 1),
        (9, at(6), 0),
        (7, at(20), 0),
    ] {
        assert_eq!(
            pending(&sent, joins, now, ttl),
            want,
            "joins {joins} at {now}"
        );
    }
    assert_eq!(pending(&[], 3, at(0), ttl), 0);
}

fn limits() -> HealthLimits {
    HealthLimits {
        admin_quiet: Duration::from_secs(6),
        failures: 2,
        arrival: Duration::from_secs(5),
        unanswered: 3,
        window: Duration::from_secs(60),
    }
}

#[test]
fn a_server_is_unhealthy_when_its_admin_api_fails_or_goes_quiet() {
    let ok = Signals {
        answered: Some(at(0)),
        failures: 0,
        heard: None,
        sent: &[],
    };
    for (signals, now, want) in [
        (ok, at(5), Health::Healthy),
        (
            Signals {
                answered: None,
                ..ok
            },
            at(0),
            Health::Unchecked,
        ),
        (Signals { failures: 1, ..ok }, at(2), Health::Healthy),
        (
            Signals { failures: 2, ..ok },
            at(2),
            Health::AdminFailing {
                failures: 2,
                since: Some(at(0)),
            },
        ),
        (
            Signals {
                answered: None,
                failures: 3,
                ..ok
            },
            at(2),
            Health::AdminFailing {
                failures: 3,
                since: None,
            },
        ),
        (ok, at(6), Health::AdminQuiet { since: at(0) }),
    ] {
        assert_eq!(
            health(&signals, now, &limits()),
            want,
            "{signals:?} at {now}"
        );
    }
}

#[test]
fn a_server_is_unhealthy_when_listeners_sent_there_never_arrive() {
    let sent: Vec<Sent> = (0..3)
        .map(|s| Sent {
            at: at(s),
            joins: 0,
        })
        .collect();
    let signals = |heard, answered| Signals {
        answered: Some(answered),
        failures: 0,
        heard,
        sent: &sent,
    };
    let quiet = Health::CallbacksQuiet {
        sent: 3,
        since: at(0),
    };
    for (heard, now, want) in [
        // Still on their way.
        (None, at(6), Health::Healthy),
        (None, at(7), quiet),
        // A callback before they were sent proves nothing about them.
        (Some(at(-1)), at(7), quiet),
        // One after the first: only two are unanswered.
        (Some(at(0)), at(7), Health::Healthy),
        (Some(at(5)), at(7), Health::Healthy),
        // Past the window they are forgiven: the server is tried again.
        (None, at(61), Health::Healthy),
    ] {
        assert_eq!(
            health(&signals(heard, now), now, &limits()),
            want,
            "heard {heard:?} at {now}"
        );
    }
}
