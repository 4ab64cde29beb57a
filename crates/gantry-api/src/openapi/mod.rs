//! The OpenAPI 3.1 document of the API, generated: the operations are
//! those of [`crate::routes()`] (so the document cannot list a route that
//! does not exist, nor miss one), each with the role it needs
//! (`x-gantry-role`); the request and response schemas are those of the
//! wire types (`gantry_wire`, through their `utoipa::ToSchema` derives), so
//! a field renamed in code is renamed in the document.
//!
//! What is not derived from types is in `operations.rs` (summaries, query
//! parameters, the statuses an operation answers with) and in `frame.json`
//! (the document's info, security scheme and error responses).

mod operations;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use crate::Route;

/// The document as served at `/api/v1/openapi.json`, built once.
pub static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    serde_json::to_string_pretty(&document(&crate::routes()))
        .expect("the OpenAPI document serializes")
});

/// The component schemas an operation refers to, by name.
pub(crate) type Schemas = BTreeMap<String, RefOr<Schema>>;

/// Registers `T` (and the types it contains) and answers a reference to it.
pub(crate) fn schema<T: ToSchema>(schemas: &mut Schemas) -> Value {
    let mut nested = Vec::new();
    T::schemas(&mut nested);
    schemas.extend(nested);
    let name = T::name().into_owned();
    schemas.insert(name.clone(), T::schema());
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn document(routes: &[Route]) -> Value {
    let mut document: Value =
        serde_json::from_str(include_str!("frame.json")).expect("frame.json is JSON");
    let operations = operations::all();
    let mut schemas = Schemas::new();
    let mut paths = Map::new();
    for route in routes {
        let operation = operations
            .iter()
            .find(|o| o.method == route.method && o.path == route.path)
            .unwrap_or_else(|| {
                panic!(
                    "{} {} has no entry in openapi/operations.rs",
                    route.method, route.path
                )
            });
        let mut rendered = operation.render(&mut schemas);
        if route.public {
            rendered["security"] = json!([]);
        } else {
            rendered["x-gantry-role"] = json!(route.role.as_str());
        }
        paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}))[route.method.as_str().to_lowercase()] = rendered;
    }
    document["paths"] = Value::Object(paths);
    let components = &mut document["components"]["schemas"];
    for (name, schema) in schemas {
        components[name] = serde_json::to_value(schema).expect("a schema serializes");
    }
    document
}
