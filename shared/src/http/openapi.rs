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

fn request_param() -> Value {
    json!({"name": "request_id", "in": "path", "required": true, "schema": {"type": "string"}})
}

fn name_body() -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {
        "type": "object", "required": ["name"], "additionalProperties": false,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200}}}}}})
}

fn trigger_body(create: bool) -> Value {
    let required = if create { json!(["name"]) } else { json!([]) };
    json!({"required": true, "content": {"application/json": {"schema": {
        "type": "object", "required": required, "additionalProperties": false,
        "properties": {
            "name": {"type": "string"},
            "identifier": {"enum": ["email", "phone_number"], "default": "email"},
            "transform": {"type": ["string", "null"], "description": "lines of `target = CEL expression`; # starts a comment"},
            "actions": {"type": "array", "items": {"$ref": "#/components/schemas/Action"}},
            "require_api_key": {"type": "boolean"},
            "active": {"type": "boolean"}}}}}})
}

fn id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}})
}

pub fn document() -> Value {
    let ok = |description: &str, schema: Value| json!({"description": description, "content": {"application/json": {"schema": schema}}});
    let list = json!({"$ref": "#/components/schemas/List"});
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "Hookline", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Webhook platform: inbound triggers, outbound webhooks, webhook campaigns."},
        "security": [{"adminKey": []}],
        "paths": {
            "/v1/lists": {
                "get": {"summary": "List contact lists", "parameters": page_params(),
                        "responses": {"200": ok("a page of lists", page_of("List")), "401": error_response("missing or wrong admin key")}},
                "post": {"summary": "Create a contact list",
                         "requestBody": name_body(),
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
                        "responses": {"200": ok("a page of contacts", page_of("Contact")), "404": error_response("no such list")}}
            },
            "/v1/sequences": {
                "get": {"summary": "List sequences", "parameters": page_params(),
                        "responses": {"200": ok("a page of sequences", page_of("List"))}},
                "post": {"summary": "Create a sequence", "requestBody": name_body(),
                         "responses": {"201": ok("the new sequence", json!({"$ref": "#/components/schemas/List"})), "422": error_response("invalid field")}}
            },
            "/v1/sequences/{id}": {
                "parameters": [id_param()],
                "get": {"summary": "Get a sequence", "responses": {"200": ok("the sequence", json!({"$ref": "#/components/schemas/List"})), "404": error_response("no such sequence")}},
                "delete": {"summary": "Delete a sequence", "responses": {"204": {"description": "deleted"}, "404": error_response("no such sequence")}}
            },
            "/v1/sequences/{id}/contacts": {
                "parameters": [id_param()],
                "get": {"summary": "Contacts in a sequence, each with status active or stopped", "parameters": page_params(),
                        "responses": {"200": ok("a page of members", page_of("SequenceMember")), "404": error_response("no such sequence")}}
            },
            "/v1/contacts": {
                "get": {"summary": "Find a contact by ?email= or ?phone_number=; without either, page through contacts",
                        "parameters": [
                            {"name": "email", "in": "query", "schema": {"type": "string"}},
                            {"name": "phone_number", "in": "query", "schema": {"type": "string"}},
                            {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                            {"name": "cursor", "in": "query", "schema": {"type": "string"}}],
                        "responses": {"200": ok("the contact, or a page of contacts", json!({"$ref": "#/components/schemas/Contact"})),
                                      "404": error_response("no such contact"), "422": error_response("invalid email or phone number")}}
            },
            "/v1/contacts/{id}": {
                "parameters": [id_param()],
                "get": {"summary": "Get a contact", "responses": {"200": ok("the contact", json!({"$ref": "#/components/schemas/Contact"})), "404": error_response("no such contact")}}
            },
            "/v1/triggers": {
                "get": {"summary": "List triggers", "parameters": page_params(), "responses": {"200": ok("a page of triggers", page_of("Trigger"))}},
                "post": {"summary": "Create a trigger; answers its URL, and its API key once when require_api_key",
                         "requestBody": trigger_body(true),
                         "responses": {"201": ok("the new trigger", json!({"$ref": "#/components/schemas/Trigger"})), "422": error_response("invalid field, transform (line and column) or action")}}
            },
            "/v1/triggers/{id}": {
                "parameters": [id_param()],
                "get": {"summary": "Get a trigger", "responses": {"200": ok("the trigger", json!({"$ref": "#/components/schemas/Trigger"})), "404": error_response("no such trigger")}},
                "patch": {"summary": "Change a trigger (absent fields are kept)", "requestBody": trigger_body(false),
                          "responses": {"200": ok("the trigger", json!({"$ref": "#/components/schemas/Trigger"})), "422": error_response("invalid field")}},
                "delete": {"summary": "Delete a trigger", "responses": {"204": {"description": "deleted"}, "404": error_response("no such trigger")}}
            },
            "/v1/triggers/{id}/activate": {"parameters": [id_param()], "post": {"summary": "Activate a trigger", "responses": {"200": ok("the trigger", json!({"$ref": "#/components/schemas/Trigger"}))}}},
            "/v1/triggers/{id}/deactivate": {"parameters": [id_param()], "post": {"summary": "Deactivate a trigger (its URL answers 404)", "responses": {"200": ok("the trigger", json!({"$ref": "#/components/schemas/Trigger"}))}}},
            "/v1/triggers/{id}/rotate-key": {"parameters": [id_param()], "post": {"summary": "Make a new API key, required from now on; shown once",
                "responses": {"200": ok("the trigger with api_key", json!({"$ref": "#/components/schemas/Trigger"}))}}},
            "/v1/triggers/{id}/preview": {
                "parameters": [id_param()],
                "post": {"summary": "The contact a sample would produce, and the sample's leaf paths",
                         "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["sample"],
                             "properties": {"sample": {"type": "object"}, "transform": {"type": "string", "description": "try this transform instead of the saved one"}}}}}},
                         "responses": {"200": ok("the contact and paths", json!({"type": "object", "properties": {
                             "contact": {"type": "object"}, "identifier": {"type": "string"},
                             "paths": {"type": "array", "items": {"type": "object", "properties": {"path": {"type": "string"}, "value": {}}}}}})),
                                       "422": error_response("the transform fails on the sample (line and column in details)")}}
            },
            "/v1/triggers/{id}/requests": {"parameters": [id_param()], "get": {"summary": "What the trigger received and what became of it, newest first",
                "parameters": page_params(), "responses": {"200": ok("a page of requests", page_of("TriggerRequest"))}}},
            "/v1/triggers/{id}/requests/{request_id}": {"parameters": [id_param(), request_param()], "get": {"summary": "One request",
                "responses": {"200": ok("the request", json!({"$ref": "#/components/schemas/TriggerRequest"})), "404": error_response("no such request")}}},
            "/v1/triggers/{id}/requests/{request_id}/replay": {"parameters": [id_param(), request_param()], "post": {"summary": "Apply a failed request again",
                "responses": {"202": ok("queued", json!({"type": "object", "properties": {"request_id": {"type": "string"}, "attempt": {"type": "integer"}}})),
                              "409": error_response("the request did not fail")}}},
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
                "ListMember": {"$ref": "#/components/schemas/Contact"},
                "SequenceMember": {"type": "object", "properties": {"contact_id": {"type": "string"}, "email": {"type": ["string", "null"]},
                    "phone_number": {"type": ["string", "null"]}, "name": {"type": ["string", "null"]}, "status": {"enum": ["active", "stopped"]},
                    "added_at": {"type": "string", "format": "date-time"}, "stopped_at": {"type": ["string", "null"], "format": "date-time"}}},
                "Contact": {"type": "object", "properties": {"id": {"type": "string"}, "email": {"type": ["string", "null"]},
                    "phone_number": {"type": ["string", "null"], "description": "digits with country code"}, "name": {"type": ["string", "null"]},
                    "first_name": {"type": ["string", "null"]}, "last_name": {"type": ["string", "null"]}, "fields": {"type": "object"},
                    "lists": {"type": "array", "items": {"type": "string"}}, "created_at": {"type": "string", "format": "date-time"},
                    "updated_at": {"type": "string", "format": "date-time"}}},
                "Action": {"oneOf": [
                    {"type": "object", "required": ["type", "list_id"], "properties": {"type": {"const": "add_to_list"}, "list_id": {"type": "string"}}},
                    {"type": "object", "required": ["type", "sequence_id"], "properties": {"type": {"const": "add_to_sequence"}, "sequence_id": {"type": "string"}}},
                    {"type": "object", "required": ["type", "sequence_id"], "properties": {"type": {"const": "stop_sequence"}, "sequence_id": {"type": "string"}}},
                    {"type": "object", "required": ["type"], "properties": {"type": {"const": "update_contact"}}},
                    {"type": "object", "required": ["type", "webhook_id", "template"], "properties": {"type": {"const": "send_message"},
                        "webhook_id": {"type": "string"}, "template": {"type": "string", "description": "text with {{field}} placeholders"}}},
                    {"type": "object", "required": ["type", "event"], "properties": {"type": {"const": "publish_event"}, "event": {"type": "string"}}}]},
                "Trigger": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "url": {"type": "string"},
                    "identifier": {"enum": ["email", "phone_number"]}, "transform": {"type": ["string", "null"]},
                    "actions": {"type": "array", "items": {"$ref": "#/components/schemas/Action"}}, "require_api_key": {"type": "boolean"},
                    "active": {"type": "boolean"}, "api_key": {"type": "string", "description": "only when just created or rotated"},
                    "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}}},
                "TriggerRequest": {"type": "object", "properties": {"id": {"type": "string"}, "trigger_id": {"type": "string"},
                    "received_at": {"type": "string", "format": "date-time"}, "processed_at": {"type": "string", "format": "date-time"},
                    "status": {"enum": ["applied", "failed"]}, "reason": {"type": ["string", "null"]},
                    "contact": {"oneOf": [{"$ref": "#/components/schemas/Contact"}, {"type": "null"}]}, "contact_created": {"type": "boolean"},
                    "actions": {"type": "array", "items": {"type": "object", "properties": {"type": {"type": "string"}, "ok": {"type": "boolean"}, "detail": {"type": "string"}}}},
                    "attempts": {"type": "integer"}, "idempotency_key": {"type": ["string", "null"]}, "payload": {"type": "object"}}}
            }
        }
    });
    // Apart: one json! of the whole document passes the macro's recursion limit.
    let more = json!({
        "paths": {
            "/v1/dead-letters": {"get": {"summary": "Queue messages given up on, kept until redriven or deleted, newest first",
                "parameters": page_params(), "responses": {"200": ok("a page of dead letters", page_of("DeadLetter"))}},
                "delete": {"summary": "Delete every dead letter (10 s of work a call)",
                "responses": {"204": {"description": "none left"}, "202": ok("more remain: call again", json!({"type": "object"}))}}},
            "/v1/dead-letters/redrive": {"post": {"summary": "Apply dead letters again (all, the oldest 100, or {\"ids\": [...]}) and remove them",
                "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object",
                    "properties": {"ids": {"type": "array", "maxItems": 100, "items": {"type": "string"}}}}}}},
                "responses": {"202": ok("what became of each", json!({"type": "object", "properties": {"data": {"type": "array", "items": {"type": "object",
                    "properties": {"id": {"type": "string"}, "outcome": {"enum": ["queued", "dropped"]}}}}}})),
                              "404": error_response("no such dead letter")}}},
            "/v1/dead-letters/{id}": {"parameters": [id_param()], "delete": {"summary": "Delete a dead letter",
                "responses": {"204": {"description": "deleted"}, "404": error_response("no such dead letter")}}}
        },
        "schemas": {
                "DeadLetter": {"type": "object", "properties": {"id": {"type": "string"}, "queue": {"enum": ["apply"]},
                    "kind": {"enum": ["inbound", "purge", "purge_trigger_log", "unreadable"]}, "reason": {"type": "string"},
                    "attempts": {"type": "integer"}, "dead_at": {"type": "string", "format": "date-time"},
                    "trigger_id": {"type": "string"}, "request_id": {"type": "string", "description": "an inbound request: its log says more, and redriving replays it"},
                    "message": {"type": "string", "description": "the message, when redriving sends it again as it was"}}}
        }
    });
    for (section, into) in [("paths", "/paths"), ("schemas", "/components/schemas")] {
        if let (Some(Value::Object(add)), Some(Value::Object(to))) =
            (more.get(section), doc.pointer_mut(into))
        {
            to.extend(add.clone());
        }
    }
    doc
}
