"""The pgvector extension, which every database of this project needs."""

from django.core.exceptions import ImproperlyConfigured

MISSING_PGVECTOR = (
    "The PostgreSQL server at {where} has no pgvector extension, which this project needs for "
    "visual search. Install it on the server (Debian/Ubuntu: `apt install postgresql-{major}-pgvector`; "
    "Docker: the `pgvector/pgvector:pg{major}` image; managed services: enable the `vector` extension), "
    "or unset DATABASE_URL to use the embedded PostgreSQL that ships with pgvector."
)


def create_vector_extension(apps, schema_editor) -> None:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        if cursor.fetchone() is None:
            major = connection.pg_version // 10000
            where = connection.settings_dict.get("HOST") or "localhost"
            raise ImproperlyConfigured(MISSING_PGVECTOR.format(where=where, major=major))
        cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
