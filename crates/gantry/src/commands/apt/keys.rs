//! `gantry apt key …`.

use anyhow::Context;
use gantry_wire::apt::{KeyBody, KeyList};

use super::KeyCommand;
use super::backend::AptBackend;

pub(super) async fn run(api: &impl AptBackend, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Generate { user_id } => {
            let body = KeyBody {
                user_id: Some(user_id),
                armored: None,
            };
            print_fingerprints(&api.create_key(body).await?);
        }
        KeyCommand::Import { file } => {
            let armored = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let body = KeyBody {
                user_id: None,
                armored: Some(armored),
            };
            print_fingerprints(&api.create_key(body).await?);
        }
        KeyCommand::ExportPublic { id } => {
            print!("{}", api.public_key(id).await?);
        }
        KeyCommand::List => {
            for k in api.keys().await?.keys {
                println!("{} {}", k.fingerprint, k.user_id);
            }
        }
    }
    Ok(())
}

fn print_fingerprints(keys: &KeyList) {
    for k in &keys.keys {
        println!("{}", k.fingerprint);
    }
}
