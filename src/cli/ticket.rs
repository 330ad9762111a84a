//! `jars ticket EVENT_ID`: mints a listener ticket (or, with `--source`, a guest's source
//! ticket, as the event's owner) and prints what whoever hands it on needs: the ticket, its id
//! (`jti`, what `jars ticket revoke` takes), when it expires, and where to use it: jars'
//! `/listen` when `[[icecast.servers]]` name where listeners go (several servers), else the
//! listening URL from `[ui] icecast_url`, or the mount.

use chrono::{DateTime, Utc};

use super::out::out;
use super::{event_id, Failure};
use crate::config::{parse_duration, Config};
use crate::tokens::TicketBinding;
use crate::{data_dir, rules, setup};

/// Mints the ticket and prints its rows.
pub async fn run(
    config: &Config,
    event_id: &str,
    source: bool,
    lifetime: Option<&str>,
    binding: TicketBinding,
    listen: Option<&str>,
) -> Result<(), Failure> {
    let id = self::event_id(event_id)?;
    let requested = lifetime
        .map(|l| parse_duration("--lifetime", l))
        .transpose()?;
    data_dir::existing_store(config).map_err(Failure::Runtime)?;
    data_dir::existing_signing_key(config).map_err(Failure::Runtime)?;
    let store = crate::store::open(&config.store)
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    let now = Utc::now();
    let event = store
        .get(id)
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))?
        .filter(|e| !e.is_expired(now))
        .ok_or_else(|| Failure::Runtime(format!("no unexpired event {id}")))?;
    let lifetime = rules::ticket_lifetime(requested, config.icecast.ticket_lifetime, &event, now)
        .map_err(|_| Failure::Usage("--lifetime: must be longer than zero".into()))?;
    let tokens = setup::token_service(config)?;
    let minted = if source {
        // As the event's owner: they could mint it themselves.
        tokens
            .issue_source_ticket(id, event.created_by, lifetime)
            .map(|(t, c)| (t, c.jti, c.exp))
    } else {
        tokens
            .issue_ticket(id, lifetime, binding)
            .map(|(t, c)| (t, c.jti, c.exp))
    };
    let (ticket, jti, exp) =
        minted.map_err(|e| Failure::Runtime(format!("cannot mint a ticket: {e}")))?;
    let mount = format!("/{id}{}", config.ui.mount_extension);
    let icecast = config.ui.icecast_url.as_deref();
    let mut rows = rows(&ticket, &jti, exp, now, &mount, icecast, source);
    if let (Some(jars), false) = (listen, source) {
        // Several servers: jars' /listen picks one; the ticket works on each.
        if let Some(row) = rows.iter_mut().find(|(n, _)| *n == "listen") {
            row.1 = format!("{jars}/listen{mount}?token={ticket}");
        }
    }
    for (name, value) in rows {
        out!("{name:<9}{value}");
    }
    Ok(())
}

/// The rows printed for a minted ticket, in order.
fn rows(
    ticket: &str,
    jti: &str,
    exp: i64,
    now: DateTime<Utc>,
    mount: &str,
    icecast_url: Option<&str>,
    source: bool,
) -> Vec<(&'static str, String)> {
    let expires = DateTime::from_timestamp(exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
    let left = u64::try_from(exp.saturating_sub(now.timestamp())).unwrap_or(0);
    let mut rows = vec![
        ("ticket", ticket.to_string()),
        ("jti", format!("{jti} (jars ticket revoke {jti})")),
        (
            "expires",
            format!(
                "{} UTC (in {})",
                expires.format("%Y-%m-%d %H:%M:%S"),
                humantime::format_duration(std::time::Duration::from_secs(left))
            ),
        ),
    ];
    let base = icecast_url.map(|u| u.trim_end_matches('/'));
    if source {
        rows.push(("mount", mount.to_string()));
        rows.push((
            "source",
            match base {
                Some(base) => format!("{base}{mount}, any user name, the ticket as password"),
                None => "any user name, the ticket as password".into(),
            },
        ));
    } else {
        rows.push((
            "listen",
            match base {
                Some(base) => format!("{base}{mount}?token={ticket}"),
                None => format!(
                    "{mount}?token={ticket} on Icecast (set [ui] icecast_url to print the whole URL)"
                ),
            },
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_say_where_to_use_the_ticket() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let rows = rows(
            "t.k.n",
            "j-1",
            1_800_007_200,
            now,
            "/e.mp3",
            Some("https://radio.example:8443/"),
            false,
        );
        let names: Vec<&str> = rows.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["ticket", "jti", "expires", "listen"]);
        assert_eq!(rows[0].1, "t.k.n");
        assert!(rows[1].1.starts_with("j-1 "), "{}", rows[1].1);
        assert_eq!(rows[2].1, "2027-01-15 10:00:00 UTC (in 2h)");
        assert_eq!(rows[3].1, "https://radio.example:8443/e.mp3?token=t.k.n");
        let source = super::rows("t", "j", 1_800_000_060, now, "/e", None, true);
        assert_eq!(source[3], ("mount", "/e".to_string()));
        assert_eq!(source[4].1, "any user name, the ticket as password");
    }
}
