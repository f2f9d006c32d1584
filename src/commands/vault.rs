//! `shiplog vault rotate`: every stored token sealed again with the newest key
//! (`TOKEN_ENCRYPTION_KEY`; the keys it replaces are listed in `TOKEN_ENCRYPTION_OLD_KEYS` so
//! they can still be opened), and every emergency copy with the newest `BREAKGLASS_KEY`.

use shiplog::breakglass::connection::Connections;
use shiplog::clock::now_ms;
use shiplog::exit;
use shiplog::log::Logger;

use super::error::{CommandError, Exit};
use crate::cli::Cli;

pub async fn rotate(cli: &Cli) -> Exit {
    let settings = super::settings(cli)?;
    super::init_diagnostics(&settings);
    let keys = super::breakglass::required_token_keys(
        "set the new key in TOKEN_ENCRYPTION_KEY and the old ones in TOKEN_ENCRYPTION_OLD_KEYS",
    )?;
    let logger = Logger::builder().build();
    let store = super::open_state(&settings, &logger).await?;
    let connections = Connections::new(store);
    let all = connections
        .list()
        .await
        .map_err(|err| CommandError::new(exit::FOLLOW_FAILED, err))?;
    let total = all.len();
    let mut failed = 0;
    for mut connection in all {
        let resealed = connection.reseal(&keys, now_ms());
        let saved = match resealed {
            Ok(()) => connections
                .save(&connection)
                .await
                .map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        if let Err(err) = saved {
            failed += 1;
            eprintln!(
                "shiplog: connection {} was not resealed: {err}",
                connection.connection_id
            );
        }
    }
    say!(
        "Resealed {} of {} stored tokens with key {}.",
        total - failed,
        total,
        shiplog::breakglass::keys::key_id_text(keys.newest().id)
    );
    let breakglass = super::breakglass::open(&settings, None).await?;
    match breakglass.reseal_copies().await {
        Ok((resealed, problems)) => {
            for (connection, err) in &problems {
                eprintln!("shiplog: the emergency copy of {connection} was not resealed: {err}");
            }
            failed += problems.len();
            say!("Resealed {resealed} emergency copies.");
        }
        Err(shiplog::breakglass::access::EntryError::NoKey) => {
            eprintln!("shiplog: BREAKGLASS_KEY is not set, so the emergency copies were left as they are.");
        }
        Err(err) => {
            failed += 1;
            eprintln!("shiplog: the emergency copies were not resealed: {err}");
        }
    }
    // Each failure has been said above.
    if failed > 0 {
        Err(CommandError::told(exit::CONFIG))
    } else {
        Ok(exit::OK)
    }
}
