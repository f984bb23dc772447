//! `GET /openapi.json`: every route, for users and generated clients. A test
//! calls each documented operation to keep this and the routers in step.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn page_of(schema: &str) -> Value {
    json!({"type": "object", "required": ["data", "next_cursor"], "properties": {
        "data": {"type": "array", "items": {"$ref": format!("#/components/schemas/{schema}")}},
        "next_cursor": {"type": ["string", "null"], "description": "pass as ?cursor= for the next page; null on the last"}}})
}

fn page_params() -> Value {
    json!([
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}}
    ])
}

fn id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}})
}

pub fn document() -> Value {
    let ok = |description: &str, schema: Value| json!({"description": description, "content": {"application/json": {"schema": schema}}});
    let list = json!({"$ref": "#/components/schemas/List"});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Hookline", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Webhook platform: inbound triggers, outbound webhooks, webhook campaigns."},
        "security": [{"adminKey": []}],
        "paths": {
            "/v1/lists": {
                "get": {"summary": "List contact lists", "parameters": page_params(),
                        "responses": {"200": ok("a page of lists", page_of("List")), "401": error_response("missing or wrong admin key")}},
                "post": {"summary": "Create a contact list",
                         "requestBody": {"required": true, "content": {"application/json": {"schema": {
                             "type": "object", "required": ["name"], "additionalProperties": false,
                             "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200}}}}}},
                         "responses": {"201": ok("the new list", list.clone()), "400": error_response("unparseable body"),
                                       "422": error_response("invalid field"), "401": error_response("missing or wrong admin key")}}
            },
            "/v1/lists/{id}": {
                "parameters": [id_param()],
                "get": {"summary": "Get a contact list", "responses": {"200": ok("the list", list), "404": error_response("no such list")}},
                "delete": {"summary": "Delete a contact list (its memberships are removed in the background)",
                           "responses": {"204": {"description": "deleted"}, "404": error_response("no such list")}}
            },
            "/v1/lists/{id}/contacts": {
                "parameters": [id_param()],
                "get": {"summary": "Contacts in a list", "parameters": page_params(),
                        "responses": {"200": ok("a page of members", page_of("ListMember")), "404": error_response("no such list")}}
            },
            "/hooks/{id}": {
                "parameters": [id_param()],
                "post": {"summary": "A trigger URL: external systems POST JSON here", "security": [{}, {"triggerKey": []}],
                         "responses": {"200": ok("captured", json!({"type": "object", "properties": {
                             "message": {"const": "Request captured successfully"}, "request_id": {"type": "string"}}})),
                                       "401": error_response("missing or wrong API key"), "404": error_response("unknown or inactive trigger")}}
            },
            "/health": {"get": {"summary": "Liveness", "security": [{}], "responses": {"200": ok("alive", json!({"type": "object"}))}}},
            "/openapi.json": {"get": {"summary": "This document", "security": [{}], "responses": {"200": ok("OpenAPI 3.1", json!({"type": "object"}))}}}
        },
        "components": {
            "securitySchemes": {
                "adminKey": {"type": "http", "scheme": "bearer", "description": "the account's admin key"},
                "triggerKey": {"type": "http", "scheme": "bearer", "description": "the trigger's API key, when it requires one"}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
                "List": {"type": "object", "required": ["id", "name", "created_at"], "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"}}},
                "ListMember": {"type": "object", "properties": {"contact_id": {"type": "string"}, "added_at": {"type": "string", "format": "date-time"}}}
            }
        }
    })
}
