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

#[test]
fn models_counts_parameters_at_the_classes_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = cnnzoo(&["models", "--json", "--num-classes", "100"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let resnet = list.iter().find(|m| m["name"] == "resnet").unwrap();
    // 90 more classes, each with 64 weights and a bias in the last layer.
    assert_eq!(resnet["parameters"], 272_378 + 90 * 65);
    assert_eq!(resnet["num_classes"], 100);
    let table = cnnzoo(&["models", "--num-classes", "100"], dir.path());
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("278,228"), "{table}");
    assert!(table.contains("(parameters at 100 classes"), "{table}");
}

#[test]
fn an_unknown_family_lists_each_family_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = cnnzoo(&["models", "--family", "transformer"], dir.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let families = stderr
        .split("families: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{stderr}"))
        .trim();
    let listed: Vec<&str> = families.split(", ").collect();
    let mut unique = listed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(listed.len(), unique.len(), "{families}");
    for family in ["googlenet", "resnet", "densenet", "efficientnet"] {
        assert!(listed.contains(&family), "{families}");
    }
}
