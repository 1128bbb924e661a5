//! JSON schemas from clients (tool parameters), checked against the JSON Schema meta-schema so
//! that a nonsense schema (`{"type": "banana"}`) is a 400 whatever `tool_choice` says, not a
//! failure later when a grammar is built from it.

use serde_json::Value;

/// Checks `schema` against the meta-schema of the draft its `$schema` names (2020-12 when it
/// names none, or one that is not bundled: nothing is fetched).
pub fn check_schema(schema: &Value) -> Result<(), String> {
    let named_unknown = schema
        .get("$schema")
        .is_some_and(|_| jsonschema::Draft::default().detect(schema) == jsonschema::Draft::Unknown);
    let result = if named_unknown {
        let mut plain = schema.clone();
        if let Some(obj) = plain.as_object_mut() {
            obj.remove("$schema");
        }
        jsonschema::meta::validate(&plain).map_err(|e| describe(&e))
    } else {
        jsonschema::meta::validate(schema).map_err(|e| describe(&e))
    };
    result
}

fn describe(e: &jsonschema::ValidationError<'_>) -> String {
    let at = e.instance_path().to_string();
    if at.is_empty() {
        e.to_string()
    } else {
        format!("{e} (at `{at}`)")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn meta_schema_violations_are_named_and_real_schemas_pass() {
        let err = check_schema(&json!({"type": "banana"})).unwrap_err();
        assert!(err.contains("banana"), "{err}");
        let err =
            check_schema(&json!({"type": "object", "properties": {"x": {"type": 3}}})).unwrap_err();
        assert!(err.contains("/properties/x"), "{err}");
        assert!(check_schema(&json!({"type": "object", "required": "x"})).is_err());
        for ok in [
            json!({}),
            json!({"type": "object", "properties": {"cmd": {"type": ["string", "null"]}},
                   "required": ["cmd"], "additionalProperties": false}),
            json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                   "properties": {"t": {"type": "array", "items": [{"type": "string"}]}}}),
            json!({"$schema": "https://example.com/custom", "type": "object"}),
            json!({"$defs": {"n": {"$ref": "#/$defs/n"}}, "$ref": "#/$defs/n"}),
        ] {
            assert_eq!(check_schema(&ok), Ok(()), "{ok}");
        }
    }
}
