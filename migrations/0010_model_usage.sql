-- What each session's agent has used of its model, counted by the Worker from the model's own
-- answers (the model route reads their usage as they stream through).
ALTER TABLE sessions ADD COLUMN model_input_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN model_output_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN model_calls INTEGER NOT NULL DEFAULT 0;
