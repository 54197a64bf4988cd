-- The journal's identity: a random id made once, when the journal is
-- created (or first opened by a Fabrik that knows it). Fabrik writes a
-- short form of it into the ownership mark of what it creates, so that a
-- resource made from another journal of the same deployment is told apart.
-- Never edit a migration once released; add a new numbered file.

CREATE TABLE journal_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

INSERT INTO journal_meta (key, value) VALUES ('journal_id', lower(hex(randomblob(16))));
