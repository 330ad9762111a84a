//! `jars event end ID`: the event expires now; a running `jars serve` sharing the store
//! notices within two seconds and drops its source and listeners.

use super::out::out;
use super::{event_id, sanctions_store, Failure};
use crate::config::Config;
use crate::store::sanctions::EventEnd;

pub(super) async fn run(config: &Config, event: &str) -> Result<(), Failure> {
    let id = event_id(event)?;
    let store = sanctions_store(config).await?;
    let ended = store
        .sanctions
        .end_event(EventEnd {
            event: id,
            at: chrono::Utc::now(),
        })
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    if !ended {
        return Err(Failure::Runtime(format!("no event {id}")));
    }
    out!("ended event {id}");
    Ok(())
}
