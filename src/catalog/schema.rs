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
    // 2: models and the descriptors each computed for each photo.
    r#"
    CREATE TABLE models (
        hash TEXT PRIMARY KEY,          -- SHA-256 of the weights file
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        dim INTEGER NOT NULL,
        card TEXT NOT NULL,             -- the model card, JSON
        first_used_at INTEGER NOT NULL
    );

    -- A descriptor belongs to one photo, one model, and the photo's content when it was computed:
    -- an edited file (new content hash) is described again.
    CREATE TABLE descriptors (
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        model_hash TEXT NOT NULL REFERENCES models(hash) ON DELETE CASCADE,
        content_hash BLOB NOT NULL,
        dim INTEGER NOT NULL,
        vector BLOB NOT NULL,           -- dim little-endian f32, unit length
        computed_at INTEGER NOT NULL,
        PRIMARY KEY (photo_id, model_hash)
    ) WITHOUT ROWID;
    CREATE INDEX descriptors_by_model ON descriptors(model_hash);

    -- Photos a model could not describe (undecodable pixels), not retried until the file changes.
    CREATE TABLE describe_failures (
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        model_hash TEXT NOT NULL REFERENCES models(hash) ON DELETE CASCADE,
        content_hash BLOB NOT NULL,
        reason TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (photo_id, model_hash)
    ) WITHOUT ROWID;
    "#,
    // 3: location proposals, suspicious tags, GPX tracks, confidence calibration.
    r#"
    -- The current proposal for an untagged photo, with its evidence (JSON).
    CREATE TABLE proposals (
        photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
        model_hash TEXT NOT NULL,
        content_hash BLOB NOT NULL,     -- the photo's content the proposal was made for
        lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
        lon REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),
        radius_m REAL NOT NULL,
        confidence REAL NOT NULL CHECK (confidence BETWEEN 0 AND 1),
        sources TEXT NOT NULL,          -- evidence kinds: visual, time, gpx
        evidence TEXT NOT NULL,
        alternatives TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'rejected')),
        created_at INTEGER NOT NULL,
        decided_at INTEGER
    );
    CREATE INDEX proposals_by_confidence ON proposals(status, confidence);

    -- Tagged photos whose tag disagrees with what they show.
    CREATE TABLE suspicious_tags (
        photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
        model_hash TEXT NOT NULL,
        tag_lat REAL NOT NULL,
        tag_lon REAL NOT NULL,
        lat REAL NOT NULL,
        lon REAL NOT NULL,
        radius_m REAL NOT NULL,
        confidence REAL NOT NULL,
        distance_m REAL NOT NULL,
        evidence TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'kept', 'fixed')),
        created_at INTEGER NOT NULL
    );

    CREATE TABLE gpx_tracks (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        name TEXT,
        sha256 TEXT NOT NULL UNIQUE,
        points INTEGER NOT NULL,
        start_ms INTEGER NOT NULL,      -- UTC, milliseconds since the Unix epoch
        end_ms INTEGER NOT NULL,
        imported_at INTEGER NOT NULL
    );
    CREATE TABLE gpx_points (
        track_id INTEGER NOT NULL REFERENCES gpx_tracks(id) ON DELETE CASCADE,
        t_ms INTEGER NOT NULL,
        lat REAL NOT NULL,
        lon REAL NOT NULL,
        ele REAL
    );
    CREATE INDEX gpx_points_by_time ON gpx_points(t_ms);

    -- Confidence calibration fitted on the user's tagged photos, per model (JSON).
    CREATE TABLE calibrations (
        model_hash TEXT PRIMARY KEY,
        fitted_at INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        calibration TEXT NOT NULL
    );

    -- Settings of the library (clock offset for GPX, default time zone, ...), JSON values.
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
    // 4: the edit journal: every write to a photo or sidecar, with what undoes it.
    r#"
    CREATE TABLE edit_batches (
        id INTEGER PRIMARY KEY,
        description TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        undo_of INTEGER REFERENCES edit_batches(id),   -- set on a batch that undid another
        undone_by INTEGER REFERENCES edit_batches(id)
    );

    -- One file written. A crash leaves 'pending' rows; on the next start the file's hash says
    -- whether the write happened (after_hash) or not (before_hash), and the row is settled.
    CREATE TABLE edits (
        id INTEGER PRIMARY KEY,
        batch_id INTEGER NOT NULL REFERENCES edit_batches(id) ON DELETE CASCADE,
        photo_id INTEGER REFERENCES photos(id) ON DELETE SET NULL,
        path TEXT NOT NULL,             -- the file written: the photo or its sidecar
        target TEXT NOT NULL CHECK (target IN ('embedded', 'sidecar')),
        before_hash BLOB,               -- BLAKE3 of the whole file before; NULL: it did not exist
        after_hash BLOB NOT NULL,
        reverse TEXT NOT NULL,          -- JSON: how to get the old bytes back from the new ones
        new_location TEXT,              -- JSON {lat, lon, alt} or null (cleared)
        source TEXT NOT NULL,           -- user, proposal, undo
        state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'rolled_back', 'failed', 'undone')),
        error TEXT,
        created_at INTEGER NOT NULL,
        finished_at INTEGER
    );
    CREATE INDEX edits_by_batch ON edits(batch_id);
    CREATE INDEX edits_pending ON edits(state) WHERE state = 'pending';
    "#,
    // 5: installed reference databases.
    r#"
    CREATE TABLE reference_databases (
        name TEXT PRIMARY KEY,
        version TEXT NOT NULL,
        path TEXT NOT NULL,             -- the installed database file
        index_path TEXT,                -- its HNSW index (NULL: small, searched exactly)
        sha256 TEXT NOT NULL,
        model_hash TEXT NOT NULL,       -- the model its descriptors were computed with
        count INTEGER NOT NULL,
        manifest TEXT NOT NULL,         -- JSON
        enabled INTEGER NOT NULL DEFAULT 1,
        installed_at INTEGER NOT NULL
    );
    "#,
    // 6: background jobs (they outlive the app that started them), and the place each located
    // photo is in (offline reverse geocoding, refreshed when the location changes).
    r#"
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,             -- scan, describe, propose, update, write, undo
        params TEXT NOT NULL,           -- JSON: what the job works on
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'paused', 'done', 'failed', 'cancelled')),
        stage TEXT NOT NULL DEFAULT '',
        done INTEGER NOT NULL DEFAULT 0,
        total INTEGER,
        message TEXT,
        errors TEXT NOT NULL DEFAULT '[]',  -- JSON [{path, reason}]
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER
    );
    CREATE TABLE photo_places (
        photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
        lat REAL NOT NULL,              -- the location the place was computed for
        lon REAL NOT NULL,
        cc TEXT NOT NULL,
        region TEXT NOT NULL,
        city TEXT NOT NULL,
        city_lat REAL NOT NULL,
        city_lon REAL NOT NULL
    );
    CREATE INDEX photo_places_by_place ON photo_places(cc, region, city);
    -- The app's grid pages through present photos newest first: 4-8 ms a page at 100k photos
    -- instead of 15-60 ms with the capture-time index alone.
    CREATE INDEX photos_browse ON photos(status, taken_at, id);
    "#,
    // 7: a sidecar's position overrides a different one still embedded in the file (programs
    // that read only EXIF see the old place); videos' durations.
    r#"
    ALTER TABLE photos ADD COLUMN embedded_gps_stale INTEGER NOT NULL DEFAULT 0;
    -- Videos (format 'video') are catalogued for their time and place; this is their length.
    ALTER TABLE photos ADD COLUMN duration_s REAL;
    "#,
    // 8: geometric verification results of photo pairs (re-ranking), so that a pair is matched
    // once per model and settings. Keyed by the two photos' content, not their ids or paths.
    r#"
    CREATE TABLE verified_pairs (
        query BLOB NOT NULL,            -- content hash and size of the photo being located
        reference BLOB NOT NULL,        -- the same of the reference it was matched to
        settings TEXT NOT NULL,         -- model, device and matcher settings
        inliers INTEGER NOT NULL,
        verified INTEGER NOT NULL,
        checked_at INTEGER NOT NULL,
        PRIMARY KEY (query, reference, settings)
    ) WITHOUT ROWID;
    "#,
];
