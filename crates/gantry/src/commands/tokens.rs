//! `gantry token create|list|revoke`.

use std::process::ExitCode;

use serde_json::json;

use crate::args::TokenCommand;
use crate::client::{Client, segment};
use crate::output::{field, print_json, short_time, table};

pub async fn run(client: &Client, command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create { name, role } => {
            let created = client
                .post("/api/v1/tokens", &json!({ "name": name, "role": role }))
                .await?;
            println!("{}", field(&created, "token"));
            eprintln!("token {name:?} ({role}) created; this is the only time its secret is shown");
        }
        TokenCommand::List { json } => {
            let answer = client.get("/api/v1/tokens").await?;
            if json {
                print_json(&answer);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = answer["tokens"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    vec![
                        field(t, "id"),
                        field(t, "name"),
                        field(t, "role"),
                        short_time(t, "createdAt"),
                        short_time(t, "lastUsedAt"),
                        short_time(t, "revokedAt"),
                    ]
                })
                .collect();
            table(
                &["ID", "NAME", "ROLE", "CREATED", "LAST USED", "REVOKED"],
                &rows,
            );
        }
        TokenCommand::Revoke { token } => {
            client
                .delete(&format!("/api/v1/tokens/{}", segment(&token)))
                .await?;
            println!("token {token} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
