"""The state database's schema: one script per version, applied in order (`PRAGMA user_version`).

Never edit a released script; append a new one.
"""

MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE persons (id TEXT PRIMARY KEY, name TEXT NOT NULL, created INTEGER NOT NULL);
    CREATE TABLE identities (
        kind TEXT NOT NULL, value TEXT NOT NULL, person_id TEXT NOT NULL, why TEXT NOT NULL,
        PRIMARY KEY (kind, value)) WITHOUT ROWID;
    CREATE INDEX identities_person ON identities (person_id);
    CREATE TABLE cards (
        source TEXT NOT NULL, ref TEXT NOT NULL, name TEXT NOT NULL, identities TEXT NOT NULL,
        groups TEXT NOT NULL, birthday TEXT, organisation TEXT, evidence TEXT NOT NULL,
        PRIMARY KEY (source, ref)) WITHOUT ROWID;
    CREATE TABLE interactions (
        id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, source TEXT NOT NULL, ref TEXT NOT NULL,
        at INTEGER NOT NULL, channel TEXT NOT NULL, direction TEXT, title TEXT NOT NULL,
        evidence TEXT NOT NULL, counts INTEGER NOT NULL, rule TEXT, person_id TEXT);
    CREATE INDEX interactions_person ON interactions (person_id) WHERE person_id IS NOT NULL;
    CREATE TABLE refs (
        source TEXT NOT NULL, ref TEXT NOT NULL, interaction_id INTEGER NOT NULL,
        PRIMARY KEY (source, ref)) WITHOUT ROWID;
    CREATE TABLE parties (
        interaction_id INTEGER NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
        name TEXT NOT NULL, PRIMARY KEY (interaction_id, kind, value)) WITHOUT ROWID;
    CREATE INDEX parties_identity ON parties (kind, value);
    CREATE TABLE cursors (source TEXT PRIMARY KEY, state TEXT NOT NULL);
    CREATE TABLE corrections (
        id INTEGER PRIMARY KEY, kind TEXT NOT NULL, person_id TEXT, identity TEXT,
        other TEXT, until TEXT, created INTEGER NOT NULL);
    CREATE TABLE contact (
        person_id TEXT PRIMARY KEY, summary TEXT, days TEXT NOT NULL, sources TEXT NOT NULL);
    CREATE TABLE followups (
        uid TEXT NOT NULL, sink TEXT NOT NULL, person_id TEXT NOT NULL, cycle TEXT NOT NULL,
        planned TEXT NOT NULL, status TEXT NOT NULL, etag TEXT, digest TEXT,
        completed_at INTEGER, stamp INTEGER NOT NULL,
        PRIMARY KEY (uid, sink)) WITHOUT ROWID;
    """,
    # 2: the iTIP SEQUENCE of each written follow-up, raised on every change.
    """
    ALTER TABLE followups ADD COLUMN sequence INTEGER NOT NULL DEFAULT 0;
    """,
    # 3: the daemon's jobs ("source:NAME", "plan"): when each last ran, whether it worked, and
    # when it runs next; `syncd run` catches up from it and `syncd status` shows it.
    """
    CREATE TABLE runs (
        job TEXT PRIMARY KEY, last_run INTEGER, last_success INTEGER, last_error TEXT,
        failures INTEGER NOT NULL DEFAULT 0, next_run INTEGER) WITHOUT ROWID;
    """,
    # 4: an interaction stored again (its source re-read after [me] or [rules] changed) gets its
    # parties anew: the old ones go when its row is updated, so a first import need not look.
    """
    CREATE TRIGGER interactions_parties AFTER UPDATE ON interactions BEGIN
        DELETE FROM parties WHERE interaction_id = new.id;
    END;
    """,
    # 5: the parties `syncd ignore` (or [rules] ignore) took out, kept so that taking the ignore
    # back gives them back, also for mail no longer in any source.
    """
    CREATE TABLE ignored_parties (
        interaction_id INTEGER NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
        name TEXT NOT NULL, PRIMARY KEY (interaction_id, kind, value)) WITHOUT ROWID;
    """,
]
