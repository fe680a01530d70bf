//! `warden cluster status`: what `GET /api/cluster` says (fetched with
//! [`crate::incidents::client::Client`]), in a few lines for a person.

use serde_json::Value;

/// The answer in a few lines for a person.
pub fn status_text(value: &Value) -> String {
    let text = |v: &Value| match v {
        Value::Null => "unknown".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let log = &value["log"];
    if value["kind"] == "local" {
        return format!(
            "kind: local (one node)\nlog: last seq {}\n",
            text(&log["local_seq"])
        );
    }
    let active = &value["active"];
    let role = match (&active["holder"], active["this_node"].as_bool()) {
        (Value::String(_), Some(true)) => {
            format!("active (lease revision {})", text(&active["revision"]))
        }
        (Value::String(holder), _) => format!("standby (active node: {holder})"),
        (Value::Null, _) if active.is_object() => "no node holds the lease".to_owned(),
        _ => "lease unknown".to_owned(),
    };
    let mut out = format!(
        "kind: nats\nnode: {} ({role})\nstream: {}: last seq {}; this node's copy {} (lag {})\n",
        text(&value["node"]),
        text(&value["stream"]),
        text(&log["stream_last_seq"]),
        text(&log["local_seq"]),
        text(&log["lag"]),
    );
    let nodes: Vec<String> = value["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| format!("{} ({})", text(&n["node"]), text(&n["role"])))
        .collect();
    if !nodes.is_empty() {
        out.push_str(&format!("nodes: {}\n", nodes.join(", ")));
    }
    for error in value["errors"].as_array().into_iter().flatten() {
        out.push_str(&format!("error: {}\n", text(error)));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::status_text;

    #[test]
    fn the_status_reads_as_a_few_lines() {
        let active = json!({
            "kind": "nats", "node": "a", "stream": "WARDEN_AUDIT",
            "active": {"holder": "a", "revision": 7, "this_node": true},
            "nodes": [{"node": "a", "role": "active", "seen": "t"}, {"node": "b", "role": "standby", "seen": "t"}],
            "log": {"stream_last_seq": 10, "local_seq": 9, "lag": 1}, "errors": [],
        });
        assert_eq!(
            status_text(&active),
            "kind: nats\nnode: a (active (lease revision 7))\nstream: WARDEN_AUDIT: last seq 10; this node's copy 9 (lag 1)\nnodes: a (active), b (standby)\n"
        );
        let cut_off = json!({
            "kind": "nats", "node": "b", "stream": "S", "active": null,
            "log": {"stream_last_seq": null, "local_seq": 3, "lag": null},
            "errors": ["stream: no answer within 5s"],
        });
        let text = status_text(&cut_off);
        assert!(text.contains("node: b (lease unknown)"), "{text}");
        assert!(text.contains("last seq unknown"), "{text}");
        assert!(
            text.ends_with("error: stream: no answer within 5s\n"),
            "{text}"
        );
        assert_eq!(
            status_text(&json!({"kind": "local", "log": {"local_seq": 4}})),
            "kind: local (one node)\nlog: last seq 4\n"
        );
    }
}
