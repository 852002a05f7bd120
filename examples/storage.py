"""Sessions that persist across runs: the seeds' storage example, without a language model.

A scripted agent with a fixed session id answers "What was my last question?" from the history
the store keeps. Run it twice in the same directory: the first run cannot answer (no history yet),
the second can, and prints the stored messages. Needs no server: SQLite (./agent_sessions.db).

    python examples/storage.py
"""

from __future__ import annotations

import sys
import time
import uuid

from agno_migrate import AgentSession, SqliteStorage

SESSION_ID = "storage-example-session"
QUESTIONS = ["What is the capital of France?", "What was my last question?"]


class ScriptedAgent:
    """Answers from the stored chat history instead of a model."""

    def __init__(self, storage, session_id: str, user_id: str = "example-user"):
        self.storage = storage
        self.session_id = session_id
        self.user_id = user_id

    def run(self, question: str) -> str:
        if self.storage.get_session(self.session_id) is None:
            session = AgentSession(self.session_id, agent_id="scripted-agent", user_id=self.user_id,
                                   agent_data={"name": "Scripted Agent"})  # fmt: skip
            self.storage.upsert_session(session)
        history = self.storage.get_messages(self.session_id)
        asked = [m["content"] for m in history if m.get("role") == "user"]
        if question == "What was my last question?":
            answer = (
                f"Your last question was: {asked[-1]!r}" if asked else "I don't know: this is our first conversation."
            )
        else:
            answer = "Paris." if "France" in question else "I only know a little."
        now = int(time.time())
        self.storage.upsert_run(self.session_id, {
            "run_id": str(uuid.uuid4()), "agent_id": "scripted-agent", "session_id": self.session_id,
            "user_id": self.user_id, "status": "COMPLETED", "created_at": now, "content": answer,
            "messages": [{"role": "user", "content": question, "created_at": now},
                         {"role": "assistant", "content": answer, "created_at": now}],
        })  # fmt: skip
        return answer


def main() -> int:
    storage = SqliteStorage(table_name="agent_sessions", db_file="agent_sessions.db", auto_upgrade_schema=True)
    agent = ScriptedAgent(storage, SESSION_ID)
    first_run = storage.get_session(SESSION_ID) is None
    for question in reversed(QUESTIONS) if first_run else QUESTIONS[1:]:
        print(f"Q: {question}\nA: {agent.run(question)}")
    if not first_run:
        print("\nStored messages:")
        for message in storage.get_messages(SESSION_ID):
            print(f"  {message['role']:>9}: {message['content']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
