//! `gantry secret set|list|delete`. `set` reads the value from stdin, so
//! that it is in no shell history and no process list.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use crate::client::{Client, segment};
use crate::output::{field, print_json, short_time, table};

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Create or replace a secret; the value is read from stdin (one
    /// trailing newline is dropped).
    Set {
        name: String,
    },
    /// List secrets (names and times; values are never shown).
    List {
        #[arg(long)]
        json: bool,
    },
    Delete {
        name: String,
    },
}

pub async fn run(client: &Client, command: SecretCommand) -> anyhow::Result<ExitCode> {
    match command {
        SecretCommand::Set { name } => {
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .context("cannot read the secret's value from stdin")?;
            if value.ends_with('\n') {
                value.pop();
                if value.ends_with('\r') {
                    value.pop();
                }
            }
            client
                .put(
                    &format!("/api/v1/secrets/{}", segment(&name)),
                    &json!({ "value": value }),
                )
                .await?;
            eprintln!("secret {name:?} set");
        }
        SecretCommand::List { json } => {
            let answer = client.get("/api/v1/secrets").await?;
            if json {
                print_json(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = answer["secrets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    vec![
                        field(s, "name"),
                        short_time(s, "createdAt"),
                        short_time(s, "updatedAt"),
                    ]
                })
                .collect();
            table(&["NAME", "CREATED", "UPDATED"], &rows);
        }
        SecretCommand::Delete { name } => {
            client
                .delete(&format!("/api/v1/secrets/{}", segment(&name)))
                .await?;
            println!("secret {name} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}
