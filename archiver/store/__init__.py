"""Stage 2, storing: the collection handle (its folder and `archiver.toml`), the catalog
(SQLite; its schema in `migrations/*.sql`, its row types in `rows`), the storage every WARC
byte goes through (`storage`), and the file layer that survives a crash (`durable`)."""
