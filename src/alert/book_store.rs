//! The alert book in the state store (`alert_book`): a restarted dashboard shows the alerts it
//! had, with their acknowledgements, and a dashboard started later shows what another instance
//! (a `shiplog serve` worker) fired. Each instance adds what the store holds and it does not
//! know, then writes its book back; live changes travel by pub/sub (see `sync`).

use std::time::Duration;

use super::book::{AlertBook, AlertRecord, KEEP};
use crate::store::StateStore;

const KEY: &str = "alert_book";
/// A book nobody touched for a week is gone.
const TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

pub async fn load(store: &StateStore) -> Vec<AlertRecord> {
    match store.get_json::<Vec<AlertRecord>>(KEY).await {
        Ok(records) => records.unwrap_or_default(),
        Err(err) => {
            tracing::warn!(error = %err, "could not read the stored alerts");
            Vec::new()
        }
    }
}

/// Takes in the alerts the store knows and the book does not; true if there were any.
pub async fn adopt(store: &StateStore, book: &mut AlertBook) -> bool {
    book.adopt(load(store).await)
}

pub async fn save(store: &StateStore, book: &AlertBook) {
    let mut records = book.newest_first();
    records.truncate(KEEP);
    if let Err(err) = store.put_json(KEY, &records, TTL).await {
        tracing::warn!(error = %err, "could not store the alerts");
    }
}
