//! A small demo world shared by the targets that need a catalog: built once
//! per process, the same for every run.

use std::sync::{Arc, OnceLock};

use stockroute::config::Config;
use stockroute::domain::clock::SystemClock;
use stockroute::domain::world::World;
use stockroute::load;

/// 6 suppliers, 400 products, seed 3.
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut config = Config::default();
        config.data.demo_suppliers = 6;
        config.data.demo_products = 400;
        config.data.demo_seed = 3;
        let source = load::source_for(&config);
        let world = load::load_world(&config, &source, Arc::new(SystemClock))
            .expect("the demo world loads");
        // Stock for the planner to work with: each supplier's generated feed.
        for (id, supplier) in world.suppliers.iter() {
            if let (Some(feed), load::WorldSource::Memory(files)) = (&supplier.feed, &source) {
                if let Some(bytes) = files.get(&feed.source) {
                    let _ = world.ingest(id, feed.kind, bytes.as_slice());
                }
            }
        }
        world
    })
}
