//! DynamoDB's JSON form of attribute values (`{"S": "text"}`, `{"B": "<base64>"}`, ...), as
//! the AWS CLI and DynamoDB's own exports write it: what `export` writes and `import` reads,
//! so that every item goes back exactly as it was. And a plain JSON view of a document, for
//! `get`.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dynamodict::aws_sdk_dynamodb::primitives::Blob;
use dynamodict::aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value, json};

/// An item: attribute name to value.
pub type Item = HashMap<String, AttributeValue>;

/// An item in DynamoDB JSON (attributes in name order, so exports are deterministic).
pub fn item_to_json(item: &Item) -> Result<Value, String> {
    let mut object = Map::new();
    for (name, value) in item {
        let value = to_json(value).map_err(|e| format!("attribute {name:?}: {e}"))?;
        object.insert(name.clone(), value);
    }
    Ok(Value::Object(object))
}

/// An item from DynamoDB JSON.
pub fn item_from_json(value: Value) -> Result<Item, String> {
    let Value::Object(object) = value else {
        return Err("an item must be a JSON object".into());
    };
    object
        .into_iter()
        .map(|(name, value)| {
            let value = from_json(value).map_err(|e| format!("attribute {name:?}: {e}"))?;
            Ok((name, value))
        })
        .collect()
}

/// One attribute value in DynamoDB JSON.
pub fn to_json(value: &AttributeValue) -> Result<Value, String> {
    let base64 = |b: &Blob| Value::String(STANDARD.encode(b.as_ref()));
    Ok(match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": base64(b) }),
        AttributeValue::Ss(set) => json!({ "SS": set }),
        AttributeValue::Ns(set) => json!({ "NS": set }),
        AttributeValue::Bs(set) => json!({ "BS": set.iter().map(base64).collect::<Vec<_>>() }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(b) => json!({ "NULL": b }),
        AttributeValue::L(list) => {
            json!({ "L": list.iter().map(to_json).collect::<Result<Vec<_>, _>>()? })
        }
        AttributeValue::M(map) => {
            let mut object = Map::new();
            for (name, value) in map {
                object.insert(name.clone(), to_json(value)?);
            }
            json!({ "M": object })
        }
        other => return Err(format!("unsupported attribute type {other:?}")),
    })
}

/// One attribute value from DynamoDB JSON: an object with exactly one type tag.
pub fn from_json(value: Value) -> Result<AttributeValue, String> {
    let Value::Object(object) = value else {
        return Err(format!(
            "expected an attribute value like {{\"S\": \"text\"}}, found {value}"
        ));
    };
    let mut entries = object.into_iter();
    let (Some((tag, inner)), None) = (entries.next(), entries.next()) else {
        return Err("an attribute value must have exactly one type tag (S, N, B, ...)".into());
    };
    let string = |v: Value| match v {
        Value::String(s) => Ok(s),
        other => Err(format!("{tag}: expected a string, found {other}")),
    };
    let strings = |v: Value| match v {
        Value::Array(items) => items.into_iter().map(string).collect::<Result<Vec<_>, _>>(),
        other => Err(format!("{tag}: expected an array, found {other}")),
    };
    let bytes = |s: String| {
        STANDARD
            .decode(s)
            .map(Blob::new)
            .map_err(|e| format!("{tag}: not base64: {e}"))
    };
    let boolean = |v: Value| match v {
        Value::Bool(b) => Ok(b),
        other => Err(format!("{tag}: expected true or false, found {other}")),
    };
    Ok(match tag.as_str() {
        "S" => AttributeValue::S(string(inner)?),
        "N" => AttributeValue::N(string(inner)?),
        "B" => AttributeValue::B(bytes(string(inner)?)?),
        "SS" => AttributeValue::Ss(strings(inner)?),
        "NS" => AttributeValue::Ns(strings(inner)?),
        "BS" => AttributeValue::Bs(
            strings(inner)?
                .into_iter()
                .map(bytes)
                .collect::<Result<_, _>>()?,
        ),
        "BOOL" => AttributeValue::Bool(boolean(inner)?),
        "NULL" => AttributeValue::Null(boolean(inner)?),
        "L" => match inner {
            Value::Array(items) => {
                AttributeValue::L(items.into_iter().map(from_json).collect::<Result<_, _>>()?)
            }
            other => return Err(format!("L: expected an array, found {other}")),
        },
        "M" => match inner {
            Value::Object(object) => AttributeValue::M(
                object
                    .into_iter()
                    .map(|(name, value)| Ok((name, from_json(value)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => return Err(format!("M: expected an object, found {other}")),
        },
        other => return Err(format!("unknown attribute type {other:?}")),
    })
}

/// A document as plain JSON, for reading: maps are objects, lists and sets arrays, numbers
/// numbers (as text when JSON cannot hold them exactly), binary base64 text.
pub fn plain(value: &AttributeValue) -> Value {
    let number = |n: &String| {
        n.parse::<i64>()
            .map(Value::from)
            .or_else(|_| n.parse::<u64>().map(Value::from))
            .ok()
            .or_else(|| {
                n.parse::<f64>()
                    .ok()
                    .filter(|f| f.to_string() == *n)
                    .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
            })
            .unwrap_or_else(|| Value::String(n.clone()))
    };
    let base64 = |b: &Blob| Value::String(STANDARD.encode(b.as_ref()));
    match value {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => number(n),
        AttributeValue::B(b) => base64(b),
        AttributeValue::Ss(set) => set.iter().cloned().map(Value::String).collect(),
        AttributeValue::Ns(set) => set.iter().map(number).collect(),
        AttributeValue::Bs(set) => set.iter().map(base64).collect(),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(list) => list.iter().map(plain).collect(),
        AttributeValue::M(map) => {
            let object: Map<String, Value> =
                map.iter().map(|(k, v)| (k.clone(), plain(v))).collect();
            Value::Object(object)
        }
        other => Value::String(format!("<unsupported attribute type {other:?}>")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips() {
        let item: Item = HashMap::from([
            ("s".into(), AttributeValue::S("text".into())),
            ("n".into(), AttributeValue::N("-1.50".into())),
            ("b".into(), AttributeValue::B(Blob::new(vec![0, 255, 7]))),
            (
                "ss".into(),
                AttributeValue::Ss(vec!["a".into(), "b".into()]),
            ),
            ("ns".into(), AttributeValue::Ns(vec!["1".into()])),
            ("bs".into(), AttributeValue::Bs(vec![Blob::new(vec![1])])),
            ("t".into(), AttributeValue::Bool(true)),
            ("z".into(), AttributeValue::Null(true)),
            (
                "l".into(),
                AttributeValue::L(vec![AttributeValue::M(HashMap::from([(
                    "k".into(),
                    AttributeValue::S("v".into()),
                )]))]),
            ),
        ]);
        let json = item_to_json(&item).unwrap();
        assert_eq!(json["b"], json!({ "B": "AP8H" }));
        let text = json.to_string();
        let back = item_from_json(serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, item);
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            json!("S"),
            json!({}),
            json!({ "S": "a", "N": "1" }),
            json!({ "S": 1 }),
            json!({ "B": "not base64!" }),
            json!({ "X": "1" }),
            json!({ "L": [{ "S": 1 }] }),
        ] {
            assert!(from_json(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_numbers_stay_exact() {
        assert_eq!(plain(&AttributeValue::N("42".into())), json!(42));
        assert_eq!(plain(&AttributeValue::N("1.5".into())), json!(1.5));
        assert_eq!(
            plain(&AttributeValue::N("123456789012345678901234567890".into())),
            json!("123456789012345678901234567890")
        );
    }
}
