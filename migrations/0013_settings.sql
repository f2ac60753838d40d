-- The deployment's settings its administrators change at run time (the workflows' rules), one
-- JSON document per name; a name not stored yet takes its default from the Worker's vars.
CREATE TABLE settings (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
