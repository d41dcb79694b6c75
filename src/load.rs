//! Reads a world: from a directory written by `demo-data` (or by hand), or
//! from the demo world built in memory.
//!
//! Loading is split in two on purpose: `load_world` reads what must exist
//! before the service can answer anything (catalog, suppliers, freight,
//! mappings) and returns an empty index; the feeds then arrive in the
//! background (`app`), and `/readyz` turns ready once each has been tried.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::demo::{self, DemoParams};
use crate::domain::catalog::{Catalog, CatalogError};
use crate::domain::clock::Clock;
use crate::domain::feeds::{FeedBoard, FeedError, FeedRules, Mapping};
use crate::domain::freight::{Freight, FreightError};
use crate::domain::index::OfferIndex;
use crate::domain::suppliers::{SupplierError, SupplierRegistry};
use crate::domain::world::World;

/// A world that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The catalog is unusable.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The supplier registry is unusable.
    #[error(transparent)]
    Suppliers(#[from] SupplierError),
    /// The freight tables are unusable.
    #[error("freight tables: {0}")]
    Freight(#[from] FreightError),
    /// A mapping file is unusable.
    #[error("mapping of supplier {supplier}: {source}")]
    Mapping {
        /// The supplier.
        supplier: String,
        /// Why.
        source: FeedError,
    },
}

/// Where the world's files are.
#[derive(Debug, Clone)]
pub enum WorldSource {
    /// A directory on disk.
    Dir(PathBuf),
    /// Files held in memory (the built-in demo world), by relative path.
    Memory(Arc<BTreeMap<String, Vec<u8>>>),
}

impl WorldSource {
    /// The demo world for the config's size and seed, with the sample freight tables.
    pub fn demo(config: &Config) -> WorldSource {
        let world = demo::generate(&DemoParams {
            suppliers: config.data.demo_suppliers,
            products: config.data.demo_products,
            seed: config.data.demo_seed,
        });
        let mut files = world.files;
        add_freight_samples(&mut files, &config.data.freight_dir);
        WorldSource::Memory(Arc::new(files))
    }

    /// The whole contents of a file.
    pub fn read(&self, rel: &str) -> Result<Vec<u8>, LoadError> {
        match self {
            WorldSource::Dir(dir) => {
                let path = dir.join(rel);
                std::fs::read(&path).map_err(|e| LoadError::Read {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })
            }
            WorldSource::Memory(files) => files.get(rel).cloned().ok_or_else(|| LoadError::Read {
                path: rel.to_owned(),
                message: "not in the built-in demo world".into(),
            }),
        }
    }

    /// The path of a file on disk, for sources that have one.
    pub fn path(&self, rel: &str) -> Option<PathBuf> {
        match self {
            WorldSource::Dir(dir) => Some(dir.join(rel)),
            WorldSource::Memory(_) => None,
        }
    }
}

/// Adds the shipped sample freight tables under `freight_dir/`.
pub fn add_freight_samples(files: &mut BTreeMap<String, Vec<u8>>, freight_dir: &str) {
    for (rel, bytes) in Freight::sample_files() {
        files.insert(format!("{freight_dir}/{rel}"), bytes);
    }
}

/// Reads catalog, suppliers, freight and mappings; the index starts empty.
pub fn load_world(
    config: &Config,
    source: &WorldSource,
    clock: Arc<dyn Clock>,
) -> Result<World, LoadError> {
    let catalog_bytes = source.read(&config.data.catalog)?;
    let load = Catalog::from_csv(catalog_bytes.as_slice())?;
    for e in load.rejected.iter().take(50) {
        tracing::warn!(line = e.line, reason = %e.message, "catalog row rejected");
    }
    if !load.rejected.is_empty() {
        tracing::warn!(rejected = load.rejected.len(), "catalog rows rejected");
    }
    let catalog = load.catalog;
    let suppliers_text = source.read(&config.data.suppliers)?;
    let suppliers = SupplierRegistry::from_toml(
        &String::from_utf8_lossy(&suppliers_text),
        &config.data.currency,
    )?;
    let freight = match source {
        WorldSource::Dir(dir) => {
            let fdir = dir.join(&config.data.freight_dir);
            if fdir.is_dir() {
                Freight::load(&fdir)?
            } else {
                tracing::warn!(dir = %fdir.display(), "no freight tables; using the shipped SAMPLE tables");
                Freight::sample()
            }
        }
        WorldSource::Memory(files) => {
            let prefix = format!("{}/", config.data.freight_dir);
            let tables: Vec<(String, Vec<u8>)> = files
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix(&prefix)
                        .map(|rel| (rel.to_owned(), v.clone()))
                })
                .collect();
            Freight::from_files(&tables)?
        }
    };
    let mut mappings = Vec::with_capacity(suppliers.len());
    for (_, s) in suppliers.iter() {
        let Some(rel) = &s.mapping else {
            mappings.push(None);
            continue;
        };
        let bytes = source.read(rel)?;
        let (mapping, errors) =
            Mapping::from_csv(bytes.as_slice(), &s.id, &catalog).map_err(|source| {
                LoadError::Mapping {
                    supplier: s.id.clone(),
                    source,
                }
            })?;
        for e in errors.iter().take(20) {
            tracing::warn!(supplier = %s.id, line = e.line, reason = %e.message, "mapping row rejected");
        }
        mappings.push(Some(mapping));
    }
    let index = OfferIndex::new(suppliers.len(), catalog.len());
    let feeds = FeedBoard::new(suppliers.len());
    Ok(World {
        feed_rules: FeedRules {
            reject_threshold_pct: config.feeds.reject_threshold_pct,
            errors_reported_max: config.feeds.errors_reported_max,
            currency: config.data.currency.clone(),
        },
        currency: config.data.currency.clone(),
        catalog,
        suppliers,
        freight,
        index,
        mappings,
        feeds,
        clock,
        ledger: std::sync::OnceLock::new(),
        origins: std::sync::OnceLock::new(),
    })
}

/// The source named by the config: its data directory, or the demo world.
pub fn source_for(config: &Config) -> WorldSource {
    match &config.data.dir {
        Some(dir) => WorldSource::Dir(dir.clone()),
        None => WorldSource::demo(config),
    }
}

/// Writes the demo world, with sample freight tables, to `dir`.
///
/// Its config turns on the fake carrier APIs, so the written world, like the
/// built-in one, exercises live rating out of the box.
pub fn write_demo(dir: &Path, params: &DemoParams, freight_dir: &str) -> std::io::Result<()> {
    let mut world = demo::generate(params);
    add_freight_samples(&mut world.files, freight_dir);
    if let Some(config) = world.files.get_mut("stockroute.toml") {
        let text = String::from_utf8_lossy(config).replacen(
            "[data]\n",
            "[data]\n# Rate against fake FedEx and UPS APIs started on loopback.\nfake_carriers = true\n",
            1,
        );
        *config = text.into_bytes();
    }
    world.write_to(dir)
}
