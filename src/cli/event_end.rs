//! `jars event end ID`: the event expires now; a running `jars serve` sharing the store
//! notices within two seconds and drops its source and listeners.

use super::out::out;
use super::{event_id, sanctions_store, Failure};
use crate::config::Config;
use crate::store::sanctions::EventEnd;

pub(super) async fn run(config: &Config, event: &str) -> Result<(), Failure> {
    let id = event_id(event)?;
    let store = sanctions_store(config).await?;
    let now = chrono::Utc::now();
    let runtime = |e: crate::store::StoreError| Failure::Runtime(e.to_string());
    let Some(event) = store.events.get(id).await.map_err(runtime)? else {
        return Err(Failure::Runtime(format!("no event {id}")));
    };
    if event.is_expired(now) {
        out!(
            "event {id} had already ended at {} UTC; nothing changed",
            event.expires_time.format("%Y-%m-%d %H:%M:%S")
        );
        return Ok(());
    }
    let ended = store
        .sanctions
        .end_event(EventEnd { event: id, at: now })
        .await
        .map_err(runtime)?;
    if !ended {
        return Err(Failure::Runtime(format!("no event {id}")));
    }
    out!("ended event {id}");
    Ok(())
}
