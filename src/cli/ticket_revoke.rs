//! `jars ticket revoke (JTI | --event ID)`: revoked tickets, written to the store; a running
//! `jars serve` sharing it notices within two seconds and drops the listeners and sources
//! holding them.

use super::out::out;
use chrono::Utc;

use super::{event_id, sanctions_store, Failure, OPERATOR};
use crate::config::Config;
use crate::store::sanctions::{RevokedTicket, TicketCutoff};

pub(super) async fn run(
    config: &Config,
    jti: Option<&str>,
    event: Option<&str>,
) -> Result<(), Failure> {
    let failed = |e: crate::store::StoreError| Failure::Runtime(e.to_string());
    let now = Utc::now();
    match (jti, event) {
        (_, Some(event)) => {
            let id = event_id(event)?;
            let store = sanctions_store(config).await?;
            if store.events.get(id).await.map_err(failed)?.is_none() {
                return Err(Failure::Runtime(format!("no event {id}")));
            }
            store
                .sanctions
                .revoke_event_tickets(
                    TicketCutoff {
                        event: id,
                        before: now,
                    },
                    OPERATOR,
                )
                .await
                .map_err(failed)?;
            out!("revoked every ticket of event {id} issued until now");
        }
        (Some(jti), None) => {
            if !crate::rules::sanctions::jti_fits(jti) {
                return Err(Failure::Usage(format!("\"{jti}\" is not a ticket id")));
            }
            let store = sanctions_store(config).await?;
            // The CLI does not know the ticket's event: kept as long as a ticket minted now
            // could live (no ticket outlives its event).
            let lifetime = chrono::Duration::from_std(config.events.lifetime)
                .unwrap_or(chrono::Duration::days(3650));
            let new = store
                .sanctions
                .revoke_ticket(RevokedTicket {
                    jti: jti.to_string(),
                    event: uuid::Uuid::nil(),
                    expires: now + lifetime,
                    created_by: OPERATOR,
                    created: now,
                })
                .await
                .map_err(failed)?;
            if new {
                out!("revoked ticket {jti}");
            } else {
                out!("ticket {jti} was already revoked");
            }
        }
        (None, None) => unreachable!("clap requires a ticket id or --event"),
    }
    Ok(())
}
