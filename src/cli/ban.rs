//! `jars ban add|list|remove`: bans of addresses, ranges and members, written to the store;
//! a running `jars serve` sharing it notices within two seconds and drops the live sessions a
//! new ban matches.

use super::out::out;
use super::{event_id, sanctions_store, Failure, OPERATOR};
use crate::config::{parse_duration, Config};
use crate::identity::{Identity, IdentityError};
use crate::rules;
use crate::sanctions::bans::{ban_ip, ban_member};
use crate::store::sanctions::{Ban, NewBan};

use super::BanCommand;

fn failed(e: crate::store::StoreError) -> Failure {
    Failure::Runtime(e.to_string())
}

pub(super) async fn run(config: &Config, cmd: BanCommand) -> Result<(), Failure> {
    match cmd {
        BanCommand::Add {
            ip,
            member,
            event,
            length,
            reason,
        } => {
            let ip = ip
                .map(|ip| {
                    ban_ip(&ip).ok_or_else(|| {
                        Failure::Usage(format!("--ip: \"{ip}\" is not an address or CIDR range"))
                    })
                })
                .transpose()?;
            let event = event.as_deref().map(event_id).transpose()?;
            let length = length.map(|l| parse_duration("--for", &l)).transpose()?;
            if length.is_some_and(|l| l.is_zero()) {
                return Err(Failure::Usage("--for: must be longer than zero".into()));
            }
            if reason.as_deref().is_some_and(|r| !rules::text_fits(r)) {
                return Err(Failure::Usage(format!(
                    "--reason: at most {} characters",
                    rules::MAX_TEXT_CHARS
                )));
            }
            let (member, member_name) = match member {
                Some(m) => {
                    let identity = Identity::from_settings(&config.identity)?;
                    let (id, name) = ban_member(&identity, &m).await.map_err(|e| match e {
                        IdentityError::NoUser => Failure::Runtime(format!("no user named \"{m}\"")),
                        other => other.into(),
                    })?;
                    (Some(id), name)
                }
                None => (None, None),
            };
            let store = sanctions_store(config).await?;
            if let Some(id) = event {
                if store.events.get(id).await.map_err(failed)?.is_none() {
                    return Err(Failure::Runtime(format!("no event {id}")));
                }
            }
            let now = chrono::Utc::now();
            let ban = store
                .sanctions
                .add_ban(NewBan {
                    ip,
                    member,
                    member_name,
                    event,
                    reason,
                    created_by: OPERATOR,
                    created: now,
                    expires: rules::sanctions::ban_expiry(now, length),
                })
                .await
                .map_err(failed)?;
            out!("added ban {}: {}", ban.id, describe(&ban));
        }
        BanCommand::List => {
            let store = sanctions_store(config).await?;
            let bans = store
                .sanctions
                .bans(chrono::Utc::now())
                .await
                .map_err(failed)?;
            out!(
                "{:>5}  {:<40}  {:<36}  {:<20}  REASON",
                "ID",
                "BANNED",
                "EVENT",
                "EXPIRES (UTC)"
            );
            for b in bans {
                out!(
                    "{:>5}  {:<40}  {:<36}  {:<20}  {}",
                    b.id,
                    who(&b),
                    b.event
                        .map_or_else(|| "every mount".into(), |e| e.to_string()),
                    b.expires.map_or_else(
                        || "never".into(),
                        |e| e.format("%Y-%m-%d %H:%M:%S").to_string()
                    ),
                    b.reason.as_deref().unwrap_or("")
                );
            }
        }
        BanCommand::Remove { id } => {
            let store = sanctions_store(config).await?;
            if !store.sanctions.remove_ban(id).await.map_err(failed)? {
                return Err(Failure::Runtime(format!("no ban {id}")));
            }
            out!("removed ban {id}");
        }
    }
    Ok(())
}

/// Who a ban names: `ip 192.0.2.7`, `member 7 (alice)`.
fn who(b: &Ban) -> String {
    match (&b.ip, b.member, &b.member_name) {
        (Some(ip), _, _) => format!("ip {ip}"),
        (None, Some(id), Some(name)) => format!("member {id} ({name})"),
        (None, Some(id), None) => format!("member {id}"),
        (None, None, _) => "nobody".into(),
    }
}

fn describe(b: &Ban) -> String {
    let scope = b
        .event
        .map_or_else(|| "every mount".into(), |e| format!("event {e}"));
    let until = b.expires.map_or_else(
        || "until removed".into(),
        |e| format!("until {}", e.format("%Y-%m-%d %H:%M:%S UTC")),
    );
    format!("{} from {scope}, {until}", who(b))
}
