"""The test MongoDB server (tests/mongo_server.py) and the MongoDB fixture pack loader."""

from __future__ import annotations

import json
import lzma

import pytest
from conftest import FIXTURES, load_mongo_fixture
from pymongo import MongoClient

MONGO_POINTS = ("v1", "2.0.0", "2.3.0", "2.5.0", "2.6.0", "3.1.10")


def test_server_is_writable_primary_of_rs0(mongo_url):
    url, _ = mongo_url
    with MongoClient(url) as client:
        hello = client.admin.command("hello")
        assert hello["isWritablePrimary"] is True
        assert hello["setName"] == "rs0"
        assert client.server_info()["version"].startswith("6.0")


def test_multi_document_transaction_commits(mongo_url):
    url, db_name = mongo_url
    with MongoClient(url) as client:
        coll = client[db_name]["tx"]
        coll.insert_one({"_id": 0})  # create the collection outside the transaction
        with client.start_session() as session:
            with session.start_transaction():
                coll.insert_one({"_id": 1}, session=session)
                coll.insert_one({"_id": 2}, session=session)
                assert coll.count_documents({}) == 1  # not visible outside before commit
        assert sorted(d["_id"] for d in coll.find()) == [0, 1, 2]
        with client.start_session() as session:
            session.start_transaction()
            coll.insert_one({"_id": 3}, session=session)
            session.abort_transaction()
        assert coll.count_documents({}) == 3


@pytest.mark.parametrize("point", MONGO_POINTS)
def test_load_mongo_fixture(mongo_url, point):
    url, db_name = mongo_url
    pack = FIXTURES / point / "mongo"
    want_counts = {
        p.name[: -len(".jsonl.xz")]: len(lzma.decompress(p.read_bytes()).splitlines()) for p in pack.glob("*.jsonl.xz")
    }
    assert want_counts
    assert load_mongo_fixture(url, db_name, point) == want_counts
    with MongoClient(url) as client:
        db = client[db_name]
        assert sorted(db.list_collection_names()) == sorted(want_counts)
        for name, count in want_counts.items():
            assert db[name].count_documents({}) == count
            want_indexes = json.loads((pack / f"{name}.indexes.json").read_text())
            got_indexes = db[name].index_information()
            assert sorted(got_indexes) == sorted(want_indexes)
            for index_name, info in want_indexes.items():
                assert got_indexes[index_name]["key"] == [tuple(k) for k in info["key"]]
                assert got_indexes[index_name].get("unique", False) == info.get("unique", False)


_seen_names = []


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_gets_its_own_database(mongo_url, run):
    url, db_name = mongo_url
    with MongoClient(url) as client:
        assert db_name not in client.list_database_names()  # fresh
        client[db_name]["marker"].insert_one({"run": run})
    assert db_name not in _seen_names  # the other run's name, when it ran first
    _seen_names.append(db_name)
