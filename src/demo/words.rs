//! Word lists and reference tables the demo world is drawn from.
//!
//! Kept apart from the generator so the tables can grow without touching the
//! logic, and so every generated value traces back to a readable constant.

/// A product brand: display name and the three-letter code that prefixes its MPNs.
pub(super) struct Brand {
    /// Display name used in product names.
    pub name: &'static str,
    /// Three upper-case letters, unique across brands so MPNs never collide
    /// between brands.
    pub code: &'static str,
}

/// Brands; codes must stay unique (a test checks it through MPN uniqueness).
pub(super) const BRANDS: &[Brand] = &[
    Brand {
        name: "Acme",
        code: "ACM",
    },
    Brand {
        name: "Brightline",
        code: "BRL",
    },
    Brand {
        name: "Cobalt",
        code: "COB",
    },
    Brand {
        name: "Duratek",
        code: "DUR",
    },
    Brand {
        name: "Everfield",
        code: "EVF",
    },
    Brand {
        name: "Fernwood",
        code: "FER",
    },
    Brand {
        name: "Granite Peak",
        code: "GRP",
    },
    Brand {
        name: "Halden",
        code: "HAL",
    },
    Brand {
        name: "Ironclad",
        code: "IRC",
    },
    Brand {
        name: "Juniper",
        code: "JUN",
    },
    Brand {
        name: "Kestrel",
        code: "KES",
    },
    Brand {
        name: "Lumora",
        code: "LUM",
    },
    Brand {
        name: "Meridian",
        code: "MER",
    },
    Brand {
        name: "Northwind",
        code: "NWD",
    },
    Brand {
        name: "Oakridge",
        code: "OAK",
    },
    Brand {
        name: "Pinnacle",
        code: "PIN",
    },
    Brand {
        name: "Quantix",
        code: "QTX",
    },
    Brand {
        name: "Redstone",
        code: "RED",
    },
    Brand {
        name: "Summit",
        code: "SUM",
    },
    Brand {
        name: "Tidewater",
        code: "TDW",
    },
    Brand {
        name: "Ultravolt",
        code: "ULV",
    },
    Brand {
        name: "Vantage",
        code: "VAN",
    },
    Brand {
        name: "Westbrook",
        code: "WBK",
    },
    Brand {
        name: "Xenon Labs",
        code: "XEN",
    },
    Brand {
        name: "Yardline",
        code: "YRD",
    },
    Brand {
        name: "Zephyr",
        code: "ZEP",
    },
    Brand {
        name: "Alder & Finch",
        code: "ALF",
    },
    Brand {
        name: "Bolt Works",
        code: "BWK",
    },
    Brand {
        name: "Crestline",
        code: "CRS",
    },
    Brand {
        name: "Delta Forge",
        code: "DLF",
    },
    Brand {
        name: "Ember",
        code: "EMB",
    },
    Brand {
        name: "Foxhollow",
        code: "FOX",
    },
    Brand {
        name: "Glacier",
        code: "GLA",
    },
    Brand {
        name: "Harbor",
        code: "HRB",
    },
    Brand {
        name: "Indigo",
        code: "IND",
    },
    Brand {
        name: "Keystone Tools",
        code: "KST",
    },
    Brand {
        name: "Lakeshore",
        code: "LKS",
    },
    Brand {
        name: "Monarch",
        code: "MON",
    },
    Brand {
        name: "Nimbus",
        code: "NIM",
    },
    Brand {
        name: "Orion",
        code: "ORI",
    },
    Brand {
        name: "Prairie",
        code: "PRA",
    },
    Brand {
        name: "Riverton",
        code: "RIV",
    },
    Brand {
        name: "Sterling",
        code: "STE",
    },
    Brand {
        name: "Trailhead",
        code: "TRH",
    },
    Brand {
        name: "Union Supply",
        code: "UNS",
    },
    Brand {
        name: "Vertex",
        code: "VTX",
    },
    Brand {
        name: "Willow",
        code: "WIL",
    },
    Brand {
        name: "Zenith",
        code: "ZEN",
    },
];

/// A product category: the nouns and sizes its names use and the physical and
/// price figures its products scatter around.
pub(super) struct Category {
    /// Product nouns ("Claw Hammer").
    pub nouns: &'static [&'static str],
    /// Size or variant labels; some carry an inch mark so CSV quoting is exercised.
    pub sizes: &'static [&'static str],
    /// Median shipping weight.
    pub median_weight_g: f64,
    /// Log-normal spread of the weight.
    pub weight_sigma: f64,
    /// Typical packed density, which turns weight into dimensions.
    pub density_g_per_cm3: f64,
    /// Median base cost in cents.
    pub median_cost_cents: f64,
}

/// Categories; broad on purpose so weights, densities and prices vary independently.
pub(super) const CATEGORIES: &[Category] = &[
    Category {
        nouns: &[
            "Wood Screws",
            "Hex Bolts",
            "Wall Anchors",
            "Machine Screws",
            "Lock Washers",
            "Rivets",
        ],
        sizes: &[
            "100-Pack",
            "M6 x 30 mm",
            "M8 x 40 mm",
            "#8 x 1-1/4\"",
            "250-Pack",
            "1/4\" x 2\"",
        ],
        median_weight_g: 250.0,
        weight_sigma: 0.8,
        density_g_per_cm3: 2.5,
        median_cost_cents: 800.0,
    },
    Category {
        nouns: &[
            "Claw Hammer",
            "Screwdriver Set",
            "Adjustable Wrench",
            "Utility Knife",
            "Pliers",
            "Socket Set",
            "Hex Key Set",
        ],
        sizes: &[
            "8 in",
            "10 in",
            "12 in",
            "1/2\" Drive",
            "3/8\" Drive",
            "24-Piece",
            "Metric",
        ],
        median_weight_g: 600.0,
        weight_sigma: 0.7,
        density_g_per_cm3: 1.5,
        median_cost_cents: 2500.0,
    },
    Category {
        nouns: &[
            "Cordless Drill",
            "Angle Grinder",
            "Impact Driver",
            "Circular Saw",
            "Jigsaw",
            "Orbital Sander",
        ],
        sizes: &["18V", "20V", "12V", "125 mm", "7-1/4 in", "Kit"],
        median_weight_g: 2200.0,
        weight_sigma: 0.5,
        density_g_per_cm3: 0.9,
        median_cost_cents: 12000.0,
    },
    Category {
        nouns: &[
            "Extension Cord",
            "LED Bulb",
            "Wall Switch",
            "Outlet",
            "Wire Spool",
            "Circuit Breaker",
        ],
        sizes: &[
            "6 ft",
            "25 ft",
            "60W Equivalent",
            "15A",
            "20A",
            "100 m",
            "4-Pack",
        ],
        median_weight_g: 300.0,
        weight_sigma: 0.9,
        density_g_per_cm3: 0.8,
        median_cost_cents: 1200.0,
    },
    Category {
        nouns: &[
            "USB-C Cable",
            "Wireless Mouse",
            "Keyboard",
            "Webcam",
            "Power Bank",
            "HDMI Switch",
            "Bluetooth Speaker",
        ],
        sizes: &["1 m", "2 m", "10000 mAh", "4K", "Mini", "Pro"],
        median_weight_g: 250.0,
        weight_sigma: 0.8,
        density_g_per_cm3: 0.45,
        median_cost_cents: 3000.0,
    },
    Category {
        nouns: &[
            "Ball Valve",
            "Pipe Fitting",
            "Faucet Cartridge",
            "Drain Trap",
            "Hose Clamp",
            "PEX Tubing",
        ],
        sizes: &["1/2 in", "3/4 in", "1 in", "10-Pack", "50 ft"],
        median_weight_g: 350.0,
        weight_sigma: 0.8,
        density_g_per_cm3: 1.8,
        median_cost_cents: 1500.0,
    },
    Category {
        nouns: &[
            "Garden Hose",
            "Pruning Shears",
            "Planter",
            "Sprinkler",
            "Rake",
            "Potting Soil",
        ],
        sizes: &["50 ft", "Large", "Small", "20 L", "40 L"],
        median_weight_g: 1500.0,
        weight_sigma: 1.0,
        density_g_per_cm3: 0.5,
        median_cost_cents: 2000.0,
    },
    Category {
        nouns: &[
            "Chef Knife",
            "Mixing Bowl Set",
            "Cutting Board",
            "Skillet",
            "Stock Pot",
            "Measuring Cups",
        ],
        sizes: &["8 in", "10 in", "12 in", "5 qt", "3-Piece"],
        median_weight_g: 900.0,
        weight_sigma: 0.7,
        density_g_per_cm3: 0.6,
        median_cost_cents: 3000.0,
    },
    Category {
        nouns: &[
            "All-Purpose Cleaner",
            "Microfiber Cloths",
            "Mop",
            "Trash Bags",
            "Scrub Brush",
        ],
        sizes: &["32 oz", "1 gal", "12-Pack", "30 gal", "Refill"],
        median_weight_g: 700.0,
        weight_sigma: 0.9,
        density_g_per_cm3: 0.7,
        median_cost_cents: 900.0,
    },
    Category {
        nouns: &[
            "Printer Paper",
            "Ballpoint Pens",
            "Stapler",
            "File Folders",
            "Desk Organizer",
            "Label Tape",
        ],
        sizes: &["Letter", "A4", "12-Pack", "500 Sheets", "12 mm"],
        median_weight_g: 400.0,
        weight_sigma: 1.0,
        density_g_per_cm3: 0.7,
        median_cost_cents: 1000.0,
    },
    Category {
        nouns: &[
            "Work Gloves",
            "Safety Glasses",
            "Ear Plugs",
            "Hard Hat",
            "Hi-Vis Vest",
            "Respirator",
        ],
        sizes: &["S", "M", "L", "XL", "200-Pack", "10-Pack"],
        median_weight_g: 150.0,
        weight_sigma: 0.8,
        density_g_per_cm3: 0.25,
        median_cost_cents: 1200.0,
    },
    Category {
        nouns: &[
            "Motor Oil",
            "Wiper Blades",
            "Jump Starter",
            "Tire Inflator",
            "Floor Mats",
            "Car Battery",
        ],
        sizes: &["5 qt", "22 in", "1000A", "Universal", "Group 24"],
        median_weight_g: 2000.0,
        weight_sigma: 1.0,
        density_g_per_cm3: 0.9,
        median_cost_cents: 3500.0,
    },
    Category {
        nouns: &[
            "Shelving Unit",
            "Storage Bin",
            "Tool Chest",
            "Folding Table",
            "Office Chair",
            "Step Stool",
        ],
        sizes: &["4-Tier", "27 gal", "36 in", "Large", "Adjustable"],
        median_weight_g: 8000.0,
        weight_sigma: 0.7,
        density_g_per_cm3: 0.12,
        median_cost_cents: 9000.0,
    },
    Category {
        nouns: &[
            "Interior Paint",
            "Spray Paint",
            "Primer",
            "Paint Roller",
            "Caulk",
            "Wood Stain",
        ],
        sizes: &["1 qt", "1 gal", "12 oz", "9 in", "10 oz"],
        median_weight_g: 1300.0,
        weight_sigma: 0.8,
        density_g_per_cm3: 1.1,
        median_cost_cents: 1800.0,
    },
    Category {
        nouns: &[
            "Ceiling Light",
            "Floodlight",
            "Desk Lamp",
            "Strip Light",
            "Work Light",
        ],
        sizes: &["12 in", "50W", "5000 lm", "16 ft", "Dimmable"],
        median_weight_g: 1100.0,
        weight_sigma: 0.8,
        density_g_per_cm3: 0.25,
        median_cost_cents: 4500.0,
    },
    Category {
        nouns: &[
            "AA Batteries",
            "AAA Batteries",
            "Coin Cell",
            "9V Battery",
            "Rechargeable Pack",
        ],
        sizes: &["4-Pack", "8-Pack", "24-Pack", "CR2032", "2-Pack"],
        median_weight_g: 120.0,
        weight_sigma: 0.9,
        density_g_per_cm3: 1.6,
        median_cost_cents: 1000.0,
    },
];

/// Adjectives for product names.
pub(super) const ADJECTIVES: &[&str] = &[
    "Heavy-Duty",
    "Compact",
    "Professional",
    "Premium",
    "Classic",
    "Ultra",
    "Essential",
    "Industrial",
    "Slim",
    "Rugged",
    "Eco",
    "Smart",
    "Deluxe",
    "Lightweight",
    "Precision",
    "Universal",
    "Stainless",
    "Weatherproof",
    "Magnetic",
    "Ergonomic",
];

/// First words of distributor names.
pub(super) const SUPPLIER_PREFIXES: &[&str] = &[
    "Keystone",
    "Atlas",
    "Summit",
    "Pioneer",
    "Liberty",
    "Heartland",
    "Coastal",
    "Midwest",
    "Pacific",
    "Great Lakes",
    "Blue Ridge",
    "Frontier",
    "Cardinal",
    "Patriot",
    "Evergreen",
    "Horizon",
    "Northstar",
    "Silverline",
    "Allied",
    "Premier",
    "Continental",
    "Rocky Mountain",
    "Gulf Coast",
    "Sunbelt",
    "Tri-State",
    "Empire",
    "Capital",
    "Beacon",
    "Harbor",
    "Crossroads",
    "Metro",
    "Prime",
    "United",
    "Central",
    "Eastern",
    "Western",
    "Delta",
    "Apex",
    "Lone Star",
    "Bayou",
];

/// Last words of distributor names.
pub(super) const SUPPLIER_SUFFIXES: &[&str] = &[
    "Distribution",
    "Supply",
    "Wholesale",
    "Trading",
    "Logistics",
    "Industrial Supply",
    "Distributors",
    "Supply Co.",
    "Wholesale Group",
    "Partners",
    "Depot",
    "Merchandise",
];

/// US states with the inclusive ranges of three-digit ZIP prefixes they own,
/// so generated ZIPs land in the right state.
pub(super) const US_ZIP_PREFIXES: &[(&str, u32, u32)] = &[
    ("NJ", 70, 89),
    ("CA", 900, 961),
    ("TX", 750, 799),
    ("IL", 600, 629),
    ("GA", 300, 319),
    ("WA", 980, 994),
    ("OH", 430, 458),
    ("PA", 150, 196),
    ("FL", 320, 349),
    ("NV", 889, 898),
    ("TN", 370, 385),
    ("KY", 400, 427),
    ("NY", 100, 149),
    ("IN", 460, 479),
    ("MO", 630, 658),
    ("AZ", 850, 865),
    ("NC", 270, 289),
    ("UT", 840, 847),
    ("CO", 800, 816),
    ("MN", 550, 567),
];

/// First letters of Canadian postal codes around the big distribution hubs
/// (Ontario, Quebec, BC, Alberta).
pub(super) const CA_FSA_LETTERS: &[u8] = b"LMKNHJVT";

/// Letters Canada Post uses in postal codes (no D, F, I, O, Q, U).
pub(super) const CA_LETTERS: &[u8] = b"ABCEGHJKLMNPRSTVWXYZ";

/// UK postcode areas around Midlands and northern logistics parks.
pub(super) const GB_AREAS: &[&str] = &[
    "DE", "NG", "MK", "B", "M", "LS", "S", "WF", "CV", "LE", "NN", "BD", "WS", "ST",
];

/// Letters valid in the inward unit of a UK postcode.
pub(super) const GB_UNIT_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";
