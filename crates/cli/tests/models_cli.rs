mod common;

use common::{cnnzoo, text};

#[test]
fn models_prints_the_registry_as_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = cnnzoo(&["models"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    for (name, params) in [
        ("googlenet", "260,650"),
        ("resnet", "272,378"),
        ("resnet_preact", "272,250"),
        ("densenet", "239,146"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{stdout}"));
        assert!(line.contains(params), "{line}");
        assert!(line.contains("32x32"), "{line}");
    }
}

#[test]
fn models_json_matches_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = cnnzoo(&["models", "--json"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let resnet = list.iter().find(|m| m["name"] == "resnet").unwrap();
    assert_eq!(resnet["parameters"], 272_378);
    assert_eq!(resnet["family"], "resnet");
    assert_eq!(resnet["input_size"], 32);
    let filtered = cnnzoo(&["models", "--json", "--family", "resnet"], dir.path());
    let filtered: Vec<serde_json::Value> = serde_json::from_slice(&filtered.stdout).unwrap();
    let names: Vec<_> = filtered
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"resnet") && names.contains(&"resnet_preact"));
    assert!(!names.contains(&"densenet"));
}
