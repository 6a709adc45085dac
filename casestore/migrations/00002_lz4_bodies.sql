-- +goose Up
-- Message bodies are compressed by PostgreSQL when a row is large (TOAST).
-- lz4 does that several times faster than the default pglz, at about the
-- same size; on a server built without lz4 the default stays.
-- +goose StatementBegin
DO $$
BEGIN
    ALTER TABLE messages ALTER COLUMN text_body SET COMPRESSION lz4,
        ALTER COLUMN html_body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available; message bodies keep the default compression';
END
$$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE messages ALTER COLUMN text_body SET COMPRESSION default,
    ALTER COLUMN html_body SET COMPRESSION default;
