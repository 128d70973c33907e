//! The labelled JSONL the injection trainers read: `<source>-<split>.jsonl` files of
//! `{"text", "label", "source", "split", "category"?}` rows (scripts/guard-data.py,
//! scripts/guard-benign.py).

use std::path::{Path, PathBuf};

/// One labelled text.
#[allow(dead_code)] // Each trainer reads the fields it needs.
pub struct Labelled {
    pub text: String,
    pub category: String,
    pub label: bool,
    pub source: String,
    pub split: String,
}

/// Every row of every `.jsonl` file in `dir`, files in name order.
pub fn load(dir: &Path) -> Result<Vec<Labelled>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    let mut rows = Vec::new();
    for file in files {
        let content = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        for (number, line) in content.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let at = || format!("{}:{}", file.display(), number + 1);
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("{}: {e}", at()))?;
            let field = |name: &str| {
                value[name].as_str().map(str::to_owned).ok_or_else(|| format!("{}: no {name}", at()))
            };
            let label = match &value["label"] {
                serde_json::Value::Bool(b) => *b,
                serde_json::Value::Number(n) => n.as_i64() == Some(1),
                _ => return Err(format!("{}: no label", at())),
            };
            rows.push(Labelled {
                label,
                // Optional: not every source labels categories.
                category: value["category"].as_str().unwrap_or_default().to_owned(),
                source: field("source")?,
                split: field("split")?,
                text: field("text")?,
            });
        }
    }
    Ok(rows)
}
