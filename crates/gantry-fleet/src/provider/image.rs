//! A group's image pulled by a host's own container engine, once per host
//! per converge, with the registry account the group's `imageAccess` names:
//! the secret is read from the server's store here and travels to the host
//! only inside the agent's SSH channel (`AgentRequest::Pull`). The server
//! never pulls a fleet group's image on its own machine.

use gantry_container::Credentials;
use gantry_deploy::model::ImageAccess;

use crate::agent::protocol::{AgentRequest, Pulled, RegistryLogin};
use crate::error::FleetError;
use crate::fleet::{Fleet, FleetHost};

/// Has `host` pull `image`; its digest when the engine tells it.
pub async fn pull(
    fleet: &Fleet,
    host: &FleetHost,
    image: &str,
    access: Option<&ImageAccess>,
) -> Result<Option<String>, FleetError> {
    let login = match access.and_then(|a| a.credentials.as_deref()) {
        None => None,
        Some(name) => {
            let value = fleet.secret(name).await?.ok_or_else(|| FleetError::Pull {
                host: host.spec.name.clone(),
                message: format!("cannot pull {image}: credentials secret {name:?} does not exist"),
            })?;
            let credentials = Credentials::parse(&value).ok_or_else(|| FleetError::Pull {
                host: host.spec.name.clone(),
                message: format!(
                    "cannot pull {image}: credentials secret {name:?} must hold user:password"
                ),
            })?;
            Some(RegistryLogin {
                user: credentials.user,
                password: credentials.password,
            })
        }
    };
    let request = AgentRequest::Pull {
        image: image.to_owned(),
        tls_verify: access.and_then(|a| a.tls_verify),
        login,
    };
    match fleet.agent::<Pulled>(&host.spec, &request).await {
        Ok(pulled) => Ok(pulled.digest),
        // The agent's own words name the cause (the registry's refusal, an
        // image that does not exist, no engine on the host).
        Err(FleetError::Agent { host, message }) => Err(FleetError::Pull { host, message }),
        Err(error) => Err(error),
    }
}
