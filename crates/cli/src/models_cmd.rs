//! `cnnzoo models`: the registry as a table or JSON.
use anyhow::Result;
use cnnzoo_models::MODELS;
use serde_json::json;

const CLASSES: usize = 10;

pub fn run(json: bool, family: Option<&str>) -> Result<()> {
    let entries: Vec<_> = MODELS
        .iter()
        .filter(|m| family.is_none_or(|f| m.family == f))
        .collect();
    if let Some(f) = family
        && entries.is_empty()
    {
        let mut families: Vec<&str> = MODELS.iter().map(|m| m.family).collect();
        families.dedup();
        anyhow::bail!(
            "no model of family '{f}'; families: {}",
            families.join(", ")
        );
    }
    let rows: Vec<_> = entries.iter().map(|m| (m, m.num_params(CLASSES))).collect();
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(m, params)| {
                json!({
                    "name": m.name,
                    "family": m.family,
                    "parameters": params,
                    "input_size": m.input_size,
                    "num_classes": CLASSES,
                    "description": m.description,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    println!(
        "{:<20} {:<12} {:>12} {:>7}  description",
        "name", "family", "parameters", "input"
    );
    for (m, params) in rows {
        println!(
            "{:<20} {:<12} {:>12} {:>7}  {}",
            m.name,
            m.family,
            group_thousands(params),
            format!("{0}x{0}", m.input_size),
            m.description
        );
    }
    println!("(parameters at {CLASSES} classes: trainable weights and biases)");
    Ok(())
}

pub fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_grouped() {
        assert_eq!(super::group_thousands(272_378), "272,378");
        assert_eq!(super::group_thousands(61_100_840), "61,100,840");
        assert_eq!(super::group_thousands(999), "999");
    }
}
