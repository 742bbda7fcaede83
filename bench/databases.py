"""The benchmark's databases: a live one Omnihub runs on, reset in milliseconds from templates
(one tenant; many tenants) that are migrated and filled once per database.
"""

import shutil
import sqlite3
from pathlib import Path

import psycopg
from psycopg import sql


class Database:
    """A live database for Omnihub plus templates it is reset from, in milliseconds."""

    label = ""
    templates: tuple[str, ...] = ("one_tenant", "many_tenants")

    def template_url(self, template: str) -> str:
        raise NotImplementedError

    def create_template(self, template: str, copy_of: str | None = None) -> None:
        """An empty database, or a copy of another template."""
        raise NotImplementedError

    def reset(self, template: str, *, second: bool = False) -> str:
        """Make the live database (or a second one, served beside it) a copy of `template`;
        returns its URL."""
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def drop(self) -> None:
        raise NotImplementedError


class SqliteDatabase(Database):
    label = "SQLite"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.live = directory / "omnihub_bench.db"

    def _path(self, template: str) -> Path:
        return self.directory / f"{template}.db"

    def template_url(self, template: str) -> str:
        return f"sqlite:///{self._path(template)}"

    def create_template(self, template: str, copy_of: str | None = None) -> None:
        self._copy(self._path(copy_of) if copy_of else None, self._path(template))

    def reset(self, template: str, *, second: bool = False) -> str:
        live = self.live.with_stem(f"{self.live.stem}_second") if second else self.live
        self._copy(self._path(template), live)
        return f"sqlite:///{live}"

    def _copy(self, source: Path | None, target: Path) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        if source is None:
            return
        # The backup API copies a consistent image, WAL content included.
        src, dst = sqlite3.connect(source), sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()

    def version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version} (WAL)"

    def drop(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class PostgresDatabase(Database):
    label = "PostgreSQL"

    def __init__(self, url: str) -> None:
        self.url = url
        base, _, self.name = url.rpartition("/")
        self.base = base
        self.admin_url = f"{base}/postgres"

    def _name(self, template: str) -> str:
        return f"{self.name}_{template}"

    def template_url(self, template: str) -> str:
        return f"{self.base}/{self._name(template)}"

    def _execute(self, *statements: sql.Composed) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def _recreate(self, name: str, template: str | None) -> None:
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        self._execute(drop, create)

    def create_template(self, template: str, copy_of: str | None = None) -> None:
        self._recreate(self._name(template), self._name(copy_of) if copy_of else None)

    def reset(self, template: str, *, second: bool = False) -> str:
        name = self._name("second") if second else self.name
        self._recreate(name, self._name(template))
        return f"{self.base}/{name}"

    def version(self) -> str:
        with psycopg.connect(self.admin_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            limit = conn.execute("SHOW max_connections").fetchone()
        return f"PostgreSQL {row[0] if row else '?'} (max_connections {limit[0] if limit else '?'})"

    def drop(self) -> None:
        """Drop the templates; the live database stays, to be looked into after a run."""
        self._execute(
            *(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self._name(template))
                )
                for template in (*self.templates, "second")
            )
        )
