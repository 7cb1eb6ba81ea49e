import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from shop.core.pgvector import create_vector_extension


@pytest.mark.django_db
def test_migrations_are_applied_and_pgvector_answers_through_django():
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == [], "unapplied migrations"
    with connection.cursor() as cursor:
        cursor.execute("SELECT '[1,2,3]'::vector <=> '[1,2,4]'::vector")
        (distance,) = cursor.fetchone()
    # cosine distance of (1,2,3) and (1,2,4): 1 - 17 / (sqrt(14) * sqrt(21))
    assert distance == pytest.approx(1 - 17 / (14**0.5 * 21**0.5), rel=1e-6)


@pytest.mark.django_db
def test_no_model_is_missing_a_migration():
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


class _FakeEditor:
    def __init__(self, conn):
        self.connection = conn


def _system_postgres_without_pgvector():
    """The machine's own PostgreSQL (no pgvector), reached through a Django connection wrapper."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    settings = {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": "5432", "NAME": "postgres", "USER": "postgres"}
    try:
        psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=2).close()
    except psycopg.OperationalError:
        pytest.skip("no PostgreSQL without pgvector on 127.0.0.1:5432 to test against")
    wrapper = DatabaseWrapper(settings, alias="no_pgvector")
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        if cursor.fetchone():
            wrapper.close()
            pytest.skip("the PostgreSQL on 127.0.0.1:5432 has pgvector")
    return wrapper


@pytest.mark.django_db  # allows opening the second connection; the test database itself is unused
def test_a_server_without_pgvector_gets_an_error_that_says_what_to_install():
    wrapper = _system_postgres_without_pgvector()
    try:
        with pytest.raises(ImproperlyConfigured) as excinfo:
            create_vector_extension(None, _FakeEditor(wrapper))
    finally:
        wrapper.close()
    message = str(excinfo.value)
    assert "pgvector" in message
    assert f"postgresql-{wrapper.pg_version // 10000}-pgvector" in message
    assert "unset DATABASE_URL" in message
