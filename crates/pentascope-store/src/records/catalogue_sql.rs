//! The SQL behind [`CatalogueRepo`], for both backends. Queries are built
//! from their filters with every value bound as a parameter; the two
//! backends differ only in how words are matched (SQLite's FTS5 table
//! `image_search`, PostgreSQL's `tsvector` column `images.search`).

use async_trait::async_trait;
use sqlx::Row;

use super::catalogue::{
    dataset_words, image_words, After, CatalogueRepo, DatasetChange, DatasetId, DatasetQuery,
    DatasetRecord, ImageFilter, ImageQuery, Page, Sort, SortField, SortKey, Visibility,
};
use super::images::ImageRepo;
use super::sql::{pg_record, sqlite_record, PgRepo, SqliteRepo};
use crate::error::StoreError;
use crate::record::{now_rfc3339, Catalogue, ImageId, ImageRecord};

/// Which database a query is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub(super) fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Sets an image's words (inside the caller's transaction).
    pub(super) fn words_sql(self) -> [&'static str; 2] {
        match self {
            Backend::Sqlite => [
                "DELETE FROM image_search WHERE rowid = $1",
                "INSERT INTO image_search (rowid, doc) VALUES ($1, $2)",
            ],
            Backend::Postgres => [
                "SELECT $1",
                "UPDATE images SET search = to_tsvector('simple', $2) WHERE id = $1",
            ],
        }
    }
}

/// The page of `rows` (fetched with one row over `limit`, which says
/// whether more follow).
fn page_of<T>(count: i64, mut rows: Vec<T>, limit: u32) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Page {
        count: count as u64,
        items: rows,
        more,
    }
}

/// A value bound to a placeholder.
#[derive(Debug, Clone)]
enum Arg {
    Text(String),
    Int(i64),
}

/// SQL text and its arguments, `$n` numbered as they are added.
#[derive(Debug, Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn new(text: &str) -> Sql {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
        }
    }

    fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// Binds a value and returns its placeholder.
    fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    fn text(&mut self, s: &str) -> String {
        self.arg(Arg::Text(s.to_string()))
    }

    /// `table`'s rows that `visibility` may see.
    fn visible(&mut self, table: &str, visibility: &Visibility) {
        match visibility {
            Visibility::All => {}
            Visibility::OwnOrPublic(user) => {
                let p = self.text(user);
                self.push(&format!(" AND ({table}.public OR {table}.owner = {p})"));
            }
            Visibility::Nothing => {
                self.push(" AND 1 = 0");
            }
        }
    }

    /// Rows after `after` in `sort`'s order of `column`.
    fn after(&mut self, column: &str, id_column: &str, sort: Sort, after: Option<&After>) {
        let Some(after) = after else { return };
        let key = self.arg(match &after.key {
            SortKey::Text(s) => Arg::Text(s.clone()),
            SortKey::Int(i) => Arg::Int(*i),
        });
        let id = self.arg(Arg::Int(after.id));
        let op = if sort.descending { "<" } else { ">" };
        self.push(&format!(
            " AND ({column} {op} {key} OR ({column} = {key} AND {id_column} {op} {id}))"
        ));
    }

    fn order(&mut self, column: &str, id_column: &str, sort: Sort, limit: u32) {
        let dir = if sort.descending { "DESC" } else { "ASC" };
        let limit = self.arg(Arg::Int(i64::from(limit) + 1));
        self.push(&format!(
            " ORDER BY {column} {dir}, {id_column} {dir} LIMIT {limit}"
        ));
    }
}

/// The conditions of an image filter, after `WHERE images.state = 'ready'`.
fn image_conditions(sql: &mut Sql, backend: Backend, visibility: &Visibility, f: &ImageFilter) {
    sql.visible("images", visibility);
    if !f.words.is_empty() {
        // each word holds only letters and digits, so quoting it (FTS5) or
        // suffixing it (tsquery) cannot make syntax of it; both match it
        // as a prefix and join the words with AND
        let (word, join, condition) = match backend {
            Backend::Sqlite => (
                "\"{}\"*",
                " ",
                "images.id IN (SELECT rowid FROM image_search WHERE image_search MATCH {})",
            ),
            Backend::Postgres => ("{}:*", " & ", "images.search @@ to_tsquery('simple', {})"),
        };
        let expr = f
            .words
            .iter()
            .map(|w| word.replace("{}", w))
            .collect::<Vec<_>>()
            .join(join);
        let p = sql.text(&expr);
        sql.push(" AND ");
        sql.push(&condition.replace("{}", &p));
    }
    if let Some(dataset) = f.dataset {
        let p = sql.arg(Arg::Int(dataset.0));
        sql.push(&format!(
            " AND images.id IN (SELECT image_id FROM dataset_images WHERE dataset_id = {p})"
        ));
    }
    for tag in &f.tags {
        let p = sql.text(tag);
        sql.push(&format!(
            " AND images.id IN (SELECT image_id FROM image_tags WHERE tag = {p})"
        ));
    }
    for (key, value) in &f.annotations {
        let (k, v) = (sql.text(key), sql.text(value));
        sql.push(&format!(
            " AND images.id IN (SELECT image_id FROM image_annotations \
             WHERE key = {k} AND value = {v})"
        ));
    }
    let equal = [
        ("images.owner", &f.owner),
        ("images.dtype", &f.dtype),
        ("images.flavour", &f.flavour),
    ];
    for (column, value) in equal {
        if let Some(value) = value {
            let p = sql.text(value);
            sql.push(&format!(" AND {column} = {p}"));
        }
    }
    if let Some(kind) = f.kind {
        let p = sql.text(kind.as_str());
        sql.push(&format!(" AND images.kind = {p}"));
    }
    if let Some(t) = &f.created_after {
        let p = sql.text(t);
        sql.push(&format!(" AND images.created_at > {p}"));
    }
    if let Some(t) = &f.created_before {
        let p = sql.text(t);
        sql.push(&format!(" AND images.created_at < {p}"));
    }
}

fn image_column(field: SortField) -> &'static str {
    match field {
        SortField::Created => "images.created_at",
        SortField::Name => "images.name",
        SortField::Size => "images.byte_size",
    }
}

fn dataset_column(field: SortField) -> &'static str {
    match field {
        SortField::Created | SortField::Size => "d.created_at",
        SortField::Name => "d.name",
    }
}

/// The dataset columns with the number of its images `visibility` sees.
fn dataset_select(sql: &mut Sql, visibility: &Visibility) {
    sql.push(
        "SELECT d.id, d.name, d.description, d.owner, d.public, d.created_at, \
         (SELECT COUNT(*) FROM dataset_images di JOIN images ON images.id = di.image_id \
          WHERE di.dataset_id = d.id AND images.state = 'ready'",
    );
    sql.visible("images", visibility);
    sql.push(") AS image_count FROM datasets d WHERE 1 = 1");
}

macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Text(s) => query.bind(s.clone()),
                Arg::Int(i) => query.bind(*i),
            };
        }
        query
    }};
}

/// Writes an image's name, description, tags and annotations (columns and
/// rows) and its words, inside the transaction `$tx`.
macro_rules! write_catalogue {
    ($tx:ident, $backend:expr, $record:expr, $datasets:expr) => {{
        let record: &ImageRecord = $record;
        let c = &record.catalogue;
        let json = |v: Result<String, serde_json::Error>| {
            v.map_err(|e| StoreError::Corrupt(e.to_string()))
        };
        let id = record.id.0;
        sqlx::query(
            "UPDATE images SET name = $1, description = $2, tags = $3, annotations = $4 \
             WHERE id = $5",
        )
        .bind(&c.name)
        .bind(&c.description)
        .bind(json(serde_json::to_string(&c.tags))?)
        .bind(json(serde_json::to_string(&c.annotations))?)
        .bind(id)
        .execute(&mut *$tx)
        .await?;
        sqlx::query("DELETE FROM image_tags WHERE image_id = $1")
            .bind(id)
            .execute(&mut *$tx)
            .await?;
        for tag in &c.tags {
            sqlx::query("INSERT INTO image_tags (image_id, tag) VALUES ($1, $2)")
                .bind(id)
                .bind(tag)
                .execute(&mut *$tx)
                .await?;
        }
        sqlx::query("DELETE FROM image_annotations WHERE image_id = $1")
            .bind(id)
            .execute(&mut *$tx)
            .await?;
        for (position, (key, value)) in c.annotations.iter().enumerate() {
            sqlx::query(
                "INSERT INTO image_annotations (image_id, position, key, value) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(position as i32)
            .bind(key)
            .bind(value)
            .execute(&mut *$tx)
            .await?;
        }
        let words = $crate::records::catalogue::image_words(record, $datasets);
        let [clear, set] = $backend.words_sql();
        sqlx::query(clear).bind(id).execute(&mut *$tx).await?;
        sqlx::query(set)
            .bind(id)
            .bind(words)
            .execute(&mut *$tx)
            .await?;
    }};
}
pub(super) use write_catalogue;

macro_rules! catalogue_repo {
    ($repo:ty, $from_row:ident, $backend:expr) => {
        impl $repo {
            /// The names an image is found by among its datasets: public
            /// ones and its owner's (another user's private dataset must
            /// not be found through a public image in it).
            async fn dataset_names(&self, record: &ImageRecord) -> Result<Vec<String>, StoreError> {
                let rows = sqlx::query(
                    "SELECT d.name, d.owner, d.public FROM datasets d \
                     JOIN dataset_images di ON di.dataset_id = d.id \
                     WHERE di.image_id = $1 ORDER BY d.id",
                )
                .bind(record.id.0)
                .fetch_all(&self.pool)
                .await?;
                let mut names = Vec::with_capacity(rows.len());
                for row in rows {
                    let owner: Option<String> = row.try_get("owner")?;
                    if row.try_get::<bool, _>("public")? || owner == record.owner {
                        names.push(row.try_get("name")?);
                    }
                }
                Ok(names)
            }

            async fn images_of(&self, dataset: DatasetId) -> Result<Vec<ImageId>, StoreError> {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT image_id FROM dataset_images WHERE dataset_id = $1 ORDER BY image_id",
                )
                .bind(dataset.0)
                .fetch_all(&self.pool)
                .await?;
                Ok(ids.into_iter().map(ImageId).collect())
            }
        }

        #[async_trait]
        impl CatalogueRepo for $repo {
            async fn query_images(
                &self,
                query: &ImageQuery,
            ) -> Result<Page<ImageRecord>, StoreError> {
                let mut count = Sql::new("SELECT COUNT(*) FROM images WHERE images.state = 'ready'");
                image_conditions(&mut count, $backend, &query.visibility, &query.filter);
                let count: i64 = bind_args!(sqlx::query_scalar(&count.text), &count.args)
                    .fetch_one(&self.pool)
                    .await?;
                let mut page = Sql::new("SELECT images.* FROM images WHERE images.state = 'ready'");
                image_conditions(&mut page, $backend, &query.visibility, &query.filter);
                let column = image_column(query.sort.field);
                page.after(column, "images.id", query.sort, query.after.as_ref());
                page.order(column, "images.id", query.sort, query.limit);
                let items = bind_args!(sqlx::query(&page.text), &page.args)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map($from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(page_of(count, items, query.limit))
            }

            async fn set_catalogue(
                &self,
                id: ImageId,
                catalogue: &Catalogue,
            ) -> Result<bool, StoreError> {
                let Some(mut record) = ImageRepo::get(self, id).await? else {
                    return Ok(false);
                };
                record.catalogue = catalogue.clone();
                let datasets = self.dataset_names(&record).await?;
                let mut tx = self.pool.begin().await?;
                write_catalogue!(tx, $backend, &record, &datasets);
                tx.commit().await?;
                Ok(true)
            }

            async fn reindex(&self, ids: &[ImageId]) -> Result<(), StoreError> {
                for &id in ids {
                    let Some(record) = ImageRepo::get(self, id).await? else {
                        continue;
                    };
                    let words = image_words(&record, &self.dataset_names(&record).await?);
                    let [clear, set] = $backend.words_sql();
                    let mut tx = self.pool.begin().await?;
                    sqlx::query(clear).bind(id.0).execute(&mut *tx).await?;
                    sqlx::query(set).bind(id.0).bind(words).execute(&mut *tx).await?;
                    tx.commit().await?;
                }
                Ok(())
            }

            async fn index_unindexed(&self) -> Result<u64, StoreError> {
                let unindexed = match $backend {
                    Backend::Sqlite => {
                        "SELECT id FROM images WHERE state = 'ready' \
                         AND id NOT IN (SELECT rowid FROM image_search) ORDER BY id"
                    }
                    Backend::Postgres => {
                        "SELECT id FROM images WHERE state = 'ready' AND search IS NULL ORDER BY id"
                    }
                };
                let ids: Vec<i64> = sqlx::query_scalar(unindexed).fetch_all(&self.pool).await?;
                let ids: Vec<ImageId> = ids.into_iter().map(ImageId).collect();
                self.reindex(&ids).await?;
                Ok(ids.len() as u64)
            }

            async fn create_dataset(
                &self,
                name: &str,
                description: &str,
                owner: Option<&str>,
            ) -> Result<DatasetRecord, StoreError> {
                let created_at = now_rfc3339();
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO datasets (name, description, owner, public, created_at, search_doc) \
                     VALUES ($1, $2, $3, FALSE, $4, $5) RETURNING id",
                )
                .bind(name)
                .bind(description)
                .bind(owner)
                .bind(&created_at)
                .bind(dataset_words(name, description))
                .fetch_one(&self.pool)
                .await?;
                Ok(DatasetRecord {
                    dataset_id: DatasetId(id),
                    name: name.to_string(),
                    description: description.to_string(),
                    owner: owner.map(String::from),
                    public: false,
                    created_at,
                    image_count: 0,
                })
            }

            async fn dataset(
                &self,
                id: DatasetId,
                visibility: &Visibility,
            ) -> Result<Option<DatasetRecord>, StoreError> {
                let mut sql = Sql::default();
                dataset_select(&mut sql, visibility);
                let p = sql.arg(Arg::Int(id.0));
                sql.push(&format!(" AND d.id = {p}"));
                bind_args!(sqlx::query(&sql.text), &sql.args)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(dataset_from_row)
                    .transpose()
            }

            async fn dataset_named(
                &self,
                name: &str,
                owner: Option<&str>,
            ) -> Result<Option<DatasetId>, StoreError> {
                let sql = match owner {
                    Some(_) => "SELECT id FROM datasets WHERE name = $1 AND owner = $2 ORDER BY id LIMIT 1",
                    None => "SELECT id FROM datasets WHERE name = $1 AND owner IS NULL AND $2 IS NULL \
                             ORDER BY id LIMIT 1",
                };
                let id: Option<i64> = sqlx::query_scalar(sql)
                    .bind(name)
                    .bind(owner)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(id.map(DatasetId))
            }

            async fn query_datasets(
                &self,
                query: &DatasetQuery,
            ) -> Result<Page<DatasetRecord>, StoreError> {
                let conditions = |sql: &mut Sql| {
                    sql.visible("d", &query.visibility);
                    for word in &query.words {
                        let p = sql.text(&format!("% {word}%"));
                        sql.push(&format!(" AND d.search_doc LIKE {p}"));
                    }
                    if let Some(owner) = &query.owner {
                        let p = sql.text(owner);
                        sql.push(&format!(" AND d.owner = {p}"));
                    }
                };
                let mut count = Sql::new("SELECT COUNT(*) FROM datasets d WHERE 1 = 1");
                conditions(&mut count);
                let count: i64 = bind_args!(sqlx::query_scalar(&count.text), &count.args)
                    .fetch_one(&self.pool)
                    .await?;
                let mut page = Sql::default();
                dataset_select(&mut page, &query.visibility);
                conditions(&mut page);
                let column = dataset_column(query.sort.field);
                page.after(column, "d.id", query.sort, query.after.as_ref());
                page.order(column, "d.id", query.sort, query.limit);
                let items = bind_args!(sqlx::query(&page.text), &page.args)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(dataset_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(page_of(count, items, query.limit))
            }

            async fn update_dataset(
                &self,
                id: DatasetId,
                change: &DatasetChange,
            ) -> Result<bool, StoreError> {
                let Some(current) = self.dataset(id, &Visibility::All).await? else {
                    return Ok(false);
                };
                let name = change.name.clone().unwrap_or(current.name);
                let description = change.description.clone().unwrap_or(current.description);
                let public = change.public.unwrap_or(current.public);
                let done = sqlx::query(
                    "UPDATE datasets SET name = $1, description = $2, public = $3, search_doc = $4 \
                     WHERE id = $5",
                )
                .bind(&name)
                .bind(&description)
                .bind(public)
                .bind(dataset_words(&name, &description))
                .bind(id.0)
                .execute(&self.pool)
                .await?;
                if change.name.is_some() || change.public.is_some() {
                    self.reindex(&self.images_of(id).await?).await?;
                }
                Ok(done.rows_affected() == 1)
            }

            async fn delete_dataset(&self, id: DatasetId) -> Result<bool, StoreError> {
                let images = self.images_of(id).await?;
                let done = sqlx::query("DELETE FROM datasets WHERE id = $1")
                    .bind(id.0)
                    .execute(&self.pool)
                    .await?;
                self.reindex(&images).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn link(&self, dataset: DatasetId, image: ImageId) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "INSERT INTO dataset_images (dataset_id, image_id) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(dataset.0)
                .bind(image.0)
                .execute(&self.pool)
                .await?;
                self.reindex(&[image]).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn unlink(&self, dataset: DatasetId, image: ImageId) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM dataset_images WHERE dataset_id = $1 AND image_id = $2",
                )
                .bind(dataset.0)
                .bind(image.0)
                .execute(&self.pool)
                .await?;
                self.reindex(&[image]).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn datasets_of(
                &self,
                image: ImageId,
                visibility: &Visibility,
            ) -> Result<Vec<(DatasetId, String)>, StoreError> {
                let mut sql = Sql::new(
                    "SELECT d.id, d.name FROM datasets d JOIN dataset_images di \
                     ON di.dataset_id = d.id WHERE",
                );
                let p = sql.arg(Arg::Int(image.0));
                sql.push(&format!(" di.image_id = {p}"));
                sql.visible("d", visibility);
                sql.push(" ORDER BY d.id");
                let rows = bind_args!(sqlx::query(&sql.text), &sql.args)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row| Ok((DatasetId(row.try_get("id")?), row.try_get("name")?)))
                    .collect()
            }

            async fn tags(
                &self,
                visibility: &Visibility,
                prefix: Option<&str>,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Page<(String, u64)>, StoreError> {
                let conditions = |sql: &mut Sql| {
                    sql.visible("images", visibility);
                    if let Some(prefix) = prefix {
                        // every string that starts with the prefix sorts
                        // between it and it followed by the last code point
                        let (low, high) = (sql.text(prefix), sql.text(&format!("{prefix}\u{10FFFF}")));
                        sql.push(&format!(" AND t.tag >= {low} AND t.tag < {high}"));
                    }
                };
                let from = "FROM image_tags t JOIN images ON images.id = t.image_id \
                            WHERE images.state = 'ready'";
                let mut count = Sql::new(&format!("SELECT COUNT(DISTINCT t.tag) {from}"));
                conditions(&mut count);
                let count: i64 = bind_args!(sqlx::query_scalar(&count.text), &count.args)
                    .fetch_one(&self.pool)
                    .await?;
                let mut page = Sql::new(&format!("SELECT t.tag, COUNT(*) AS images {from}"));
                conditions(&mut page);
                if let Some(after) = after {
                    let p = page.text(after);
                    page.push(&format!(" AND t.tag > {p}"));
                }
                let p = page.arg(Arg::Int(i64::from(limit) + 1));
                page.push(&format!(" GROUP BY t.tag ORDER BY t.tag LIMIT {p}"));
                let rows = bind_args!(sqlx::query(&page.text), &page.args)
                    .fetch_all(&self.pool)
                    .await?;
                let items = rows
                    .iter()
                    .map(|row| Ok((row.try_get("tag")?, row.try_get::<i64, _>("images")? as u64)))
                    .collect::<Result<Vec<_>, StoreError>>()?;
                Ok(page_of(count, items, limit))
            }
        }
    };
}

fn dataset_from_row<R: Row>(row: &R) -> Result<DatasetRecord, StoreError>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(DatasetRecord {
        dataset_id: DatasetId(row.try_get("id")?),
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        owner: row.try_get("owner")?,
        public: row.try_get("public")?,
        created_at: row.try_get("created_at")?,
        image_count: row.try_get::<i64, _>("image_count")? as u64,
    })
}

catalogue_repo!(SqliteRepo, sqlite_record, Backend::Sqlite);
catalogue_repo!(PgRepo, pg_record, Backend::Postgres);
