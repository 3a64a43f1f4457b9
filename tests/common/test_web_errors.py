"""The error shape every service's app answers with when something other than the input fails."""
from flask_smorest import Blueprint
from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError

from services.common.web import create_app

blp = Blueprint("broken", __name__, url_prefix="/broken")
FAILURE: list[Exception] = []


@blp.route("/")
def broken():
    raise FAILURE[0]


def answer(failure: Exception):
    FAILURE[:] = [failure]
    app = create_app("intake", {"SERVICE_NAME": "intake"}, [blp], title="t")
    return app.test_client().get("/broken/")


def test_the_database_out_of_reach_is_a_503_with_retry_after_not_a_500():
    for failure in (AutoReconnect("pool paused"), ServerSelectionTimeoutError("no server")):
        response = answer(failure)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        body = response.get_json()
        assert body["code"] == 503 and "Idempotency-Key" in body["message"]


def test_anything_else_unexpected_is_a_500_without_internals():
    response = answer(ValueError("tckn 10000000146 is odd"))
    assert response.status_code == 500
    assert "10000000146" not in response.get_data(as_text=True)
