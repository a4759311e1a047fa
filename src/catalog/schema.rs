//! Schema migrations, keyed by SQLite's `user_version`: migration N (1-based) brings a catalog
//! from version N-1 to N, inside one transaction. Never edit a released migration; add one.

pub const MIGRATIONS: &[&str] = &[
    // 1: library roots, photos, scans and the files a scan could not read.
    r#"
    CREATE TABLE library_roots (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        added_at INTEGER NOT NULL,
        last_scan_completed_at INTEGER
    );

    -- One row per photo file. The id is the photo's identity: it survives renames and moves
    -- (matched by content_hash), and later tables (descriptors, proposals, the edit journal)
    -- refer to it. A deleted file is marked missing, never forgotten.
    CREATE TABLE photos (
        id INTEGER PRIMARY KEY,
        root_id INTEGER NOT NULL REFERENCES library_roots(id) ON DELETE CASCADE,
        path TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        content_hash BLOB NOT NULL,
        format TEXT NOT NULL,
        width INTEGER,
        height INTEGER,
        orientation INTEGER CHECK (orientation BETWEEN 1 AND 8),
        taken_at TEXT,                 -- local wall-clock time, ISO 8601 without offset
        taken_at_offset_min INTEGER,   -- UTC offset in minutes, when known
        gps_time_utc TEXT,             -- GPS receiver time, ISO 8601 UTC
        make TEXT,
        model TEXT,
        lat REAL CHECK (lat BETWEEN -90 AND 90),
        lon REAL CHECK (lon BETWEEN -180 AND 180),
        alt REAL,
        gps_source TEXT CHECK (gps_source IN ('exif', 'sidecar', 'user', 'proposal')),
        sidecar_path TEXT,
        sidecar_mtime_ns INTEGER,
        warnings TEXT,                 -- newline-separated problems found when reading
        status TEXT NOT NULL DEFAULT 'present' CHECK (status IN ('present', 'missing')),
        missing_since INTEGER,
        first_seen_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        CHECK ((lat IS NULL) = (lon IS NULL)),
        CHECK ((lat IS NULL) = (gps_source IS NULL))
    );
    CREATE INDEX photos_by_hash ON photos(content_hash);
    CREATE INDEX photos_by_root ON photos(root_id);
    CREATE INDEX photos_by_taken_at ON photos(taken_at);

    -- Files under a root that are not readable photos, remembered with their size and mtime so
    -- that an unchanged bad file is not read again on every scan.
    CREATE TABLE unreadable_files (
        path TEXT PRIMARY KEY,
        root_id INTEGER NOT NULL REFERENCES library_roots(id) ON DELETE CASCADE,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        reason TEXT NOT NULL,
        first_seen_at INTEGER NOT NULL
    );

    CREATE TABLE scans (
        id INTEGER PRIMARY KEY,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'cancelled', 'failed')),
        files_seen INTEGER NOT NULL DEFAULT 0,
        files_read INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0
    );
    "#,
];
