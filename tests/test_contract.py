"""Contract tests: the official clients, unmodified, against the replay server.

``huggingface_hub`` and PyGithub are code no one here wrote; where they list, page, read and
fail against the replay as they would against the Hub and GitHub, the double is checked by
someone else's reading of the APIs, not by hubwatch's own. They are synchronous, so each call
runs in a thread while the replay serves on the test's event loop.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from github import Auth, Github, GithubException
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError

from hubwatch.replay import GeneratedSource, GithubWorld, HubWorld, ReplayServer

T = TypeVar("T")
REPO = "octo/lib"
GITHUB_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(function, *args, **kwargs)


def hub(replay: ReplayServer) -> HfApi:
    return HfApi(endpoint=replay.url, token=False)


def first_model(replay: ReplayServer) -> str:
    index = next(
        i for i in range(replay.hub.released) if replay.hub.find(replay.hub.view(i)["id"]) == i
    )
    return str(replay.hub.view(index)["id"])


# -- Hub: listing --


async def test_list_models_pages_by_trending_score_without_loss_or_repeat() -> None:
    # 2,500 models over 1,000 trendingScore values: every score is shared, every page cut
    # falls inside a tie. The client follows the Link cursor from page to page.
    source = GeneratedSource(2500, seed=3)
    async with ReplayServer(HubWorld(source, start=len(source))) as replay:
        models = await call(
            lambda: list(hub(replay).list_models(sort="trending_score", expand=["trendingScore"]))
        )
        pages = replay.by_endpoint["list:trendingScore"]
    ids = [m.id for m in models]
    assert pages >= 3
    assert len(ids) == len(set(ids)) == 2500
    scores = [m.trending_score for m in models]
    assert scores == sorted(scores, reverse=True)


async def test_list_models_by_creation_with_expand_and_a_filter(replay: ReplayServer) -> None:
    replay.hub.release(len(replay.hub))
    fields = ["createdAt", "author", "tags", "pipeline_tag", "cardData", "siblings"]
    api = hub(replay)
    models = await call(
        lambda: list(
            api.list_models(sort="created_at", pipeline_tag="text-generation", expand=fields)
        )
    )
    views = [replay.hub.view(i) for i in range(replay.hub.released)]
    expected = {v["id"] for v in views if v.get("pipeline_tag") == "text-generation"}
    assert 0 < len(expected) < len(views)
    assert len(models) == len({m.id for m in models}) and {m.id for m in models} == expected
    created = [m.created_at for m in models]
    assert created == sorted(created, reverse=True)
    assert all(m.likes is None and m.downloads is None for m in models)  # not asked for
    assert any(m.siblings for m in models) and any(m.card_data for m in models)


async def test_list_without_expand_returns_the_default_fields(replay: ReplayServer) -> None:
    replay.hub.release(20)
    models = await call(lambda: list(hub(replay).list_models(sort="likes", limit=5)))
    assert len(models) == 5
    for model in models:
        assert model.likes is not None and model.created_at is not None and model.tags
        # Not in the default set: these need expand (or full / cardData / config).
        assert model.siblings is None and model.card_data is None and model.sha is None
    full = await call(lambda: list(hub(replay).list_models(sort="likes", limit=5, full=True)))
    assert all(m.siblings is not None and m.sha for m in full)
    assert all(m.card_data is None for m in full)


async def test_listing_refuses_what_the_hub_refuses(replay: ReplayServer) -> None:
    replay.hub.release(20)
    api = hub(replay)
    for bad in (["notAField"], ["baseModels"], ["childrenModelCount"], ["usedStorage"]):
        with pytest.raises(HfHubHTTPError) as failed:
            await call(lambda bad=bad: list(api.list_models(expand=bad, limit=1)))
        assert failed.value.response.status_code == 400
        assert '"expand" must be one of' in str(failed.value)
    # A filter the Hub has but the replay cannot answer: 501, the double's shortfall (the
    # call is valid), not silently ignored and not a 400 the Hub would never send.
    with pytest.raises(HfHubHTTPError) as failed:
        await call(lambda: list(api.list_models(inference="warm", limit=1)))
    assert failed.value.response.status_code == 501
    assert "does not implement the 'inference' parameter" in str(failed.value)
    async with httpx.AsyncClient(base_url=replay.url) as http:
        unknown = await http.get("/api/models", params={"inferenze": "warm"})
        both = await http.get("/api/models", params={"inference": "warm", "expand": "nope"})
        apps = await http.get("/api/models", params={"apps": "ollama"})
    assert unknown.status_code == 400  # no parameter of the endpoint: the Hub refuses it
    assert both.status_code == 400  # what the Hub refuses comes first
    assert apps.status_code == 501 and "'apps'" in apps.json()["error"]


async def test_listing_filters_are_honoured(replay: ReplayServer) -> None:
    replay.hub.release(len(replay.hub))
    api = hub(replay)
    everything = await call(lambda: list(api.list_models(expand=["tags", "pipeline_tag"])))
    gguf = await call(lambda: list(api.list_models(filter="gguf", expand=["tags"])))
    assert 0 < len(gguf) < len(everything) and all("gguf" in m.tags for m in gguf)
    tagged = await call(lambda: list(api.list_models(pipeline_tag="text-generation")))
    expected = [m.id for m in everything if m.pipeline_tag == "text-generation"]
    assert 0 < len(tagged) < len(everything)
    assert sorted(m.id for m in tagged) == sorted(expected)
    none = await call(lambda: list(api.list_models(pipeline_tag="no-such-task")))
    assert none == []
    large = await call(lambda: list(api.list_models(num_parameters="min:20B")))
    assert 0 < len(large) < len(everything)


# -- Hub: a model's own endpoints --


async def test_model_info_expand_and_revision(replay: ReplayServer) -> None:
    replay.hub.release(len(replay.hub))
    api = hub(replay)
    repo_id = first_model(replay)
    info = await call(api.model_info, repo_id)
    assert info.id == repo_id and info.sha and info.tags is not None
    only = await call(api.model_info, repo_id, expand=["likes", "baseModels"])
    assert only.likes is not None and only.tags is None and only.sha is None
    with pytest.raises(HfHubHTTPError) as failed:
        await call(api.model_info, repo_id, expand=["notAField"])
    assert failed.value.response.status_code == 400
    pinned = await call(api.model_info, repo_id, revision=info.sha)
    assert pinned.sha == info.sha
    with pytest.raises(RevisionNotFoundError):
        await call(api.model_info, repo_id, revision="no-such-branch")


async def test_renamed_and_differently_cased_ids_answer_as_the_hub_does(
    replay: ReplayServer,
) -> None:
    # huggingface_hub follows the Hub's redirect from a renamed repo's old name (its client
    # follows redirects; it documents relative ones as "a renamed repository"), and reads
    # the id from the body: the name the Hub lists the repo under now.
    replay.hub.release(len(replay.hub))
    api = hub(replay)
    repo_id = first_model(replay)
    old = f"{repo_id.split('/')[0]}/Old-Name-Of-It"
    replay.hub.rename(old, repo_id)
    moved = await call(api.model_info, old, expand=["likes"])
    assert moved.id == repo_id and moved.likes is not None
    assert (await call(api.model_info, old.upper())).id == repo_id  # case-insensitive too
    assert (await call(api.model_info, repo_id.swapcase())).id == repo_id
    made = replay.hub.commit(repo_id, "after the rename")
    assert (await call(api.list_repo_commits, old))[0].commit_id == made
    with pytest.raises(HfHubHTTPError) as failed:
        await call(api.model_info, f"{old}-never")
    assert failed.value.response.status_code == 401


async def test_list_repo_commits_pages_and_honours_the_revision(replay: ReplayServer) -> None:
    replay.hub.release(len(replay.hub))
    api = hub(replay)
    repo_id = first_model(replay)
    made = [replay.hub.commit(repo_id, f"change {n}") for n in range(60)]
    commits = await call(api.list_repo_commits, repo_id)
    ids = [c.commit_id for c in commits]
    assert ids[:60] == made[::-1]  # newest first, across Link pages of 50
    assert len(ids) == len(set(ids)) > 60
    older = await call(api.list_repo_commits, repo_id, revision=made[9])
    assert [c.commit_id for c in older][:10] == made[9::-1]
    assert len(older) == len(ids) - 50
    formatted = await call(api.list_repo_commits, repo_id, formatted=True)
    assert formatted[0].formatted_title == "<p>change 59</p>"
    with pytest.raises(RevisionNotFoundError):
        await call(api.list_repo_commits, repo_id, revision="0" * 40)
    info = await call(api.model_info, repo_id)
    assert info.sha == made[-1]


async def test_get_repo_discussions_pages_and_filters(replay: ReplayServer) -> None:
    replay.hub.release(len(replay.hub))
    api = hub(replay)
    repo_id = first_model(replay)
    for n in range(1, 56):
        replay.hub.discussion(
            repo_id,
            title=f"d{n}",
            status="closed" if n % 5 == 0 else "open",
            is_pull_request=n % 2 == 0,
        )
    every = await call(lambda: list(api.get_repo_discussions(repo_id)))
    assert sorted(d.num for d in every) == list(range(1, 56))  # two pages by number
    pulls = await call(
        lambda: list(api.get_repo_discussions(repo_id, discussion_type="pull_request"))
    )
    assert sorted(d.num for d in pulls) == list(range(2, 56, 2))
    assert all(d.is_pull_request for d in pulls)
    closed = await call(lambda: list(api.get_repo_discussions(repo_id, discussion_status="closed")))
    assert sorted(d.num for d in closed) == list(range(5, 56, 5))


# -- GitHub --


@pytest.fixture
def github_replay(replay: ReplayServer) -> ReplayServer:
    replay.github.add_repo(REPO, history=5)
    return replay


def gh(replay: ReplayServer, token: str | None = None) -> Github:
    auth = Auth.Token(token) if token else None
    return Github(base_url=replay.url, auth=auth, retry=None)


async def test_pygithub_reads_repo_commits_issues_and_releases(github_replay: ReplayServer) -> None:
    world: GithubWorld = github_replay.github
    client = gh(github_replay)
    repo = await call(client.get_repo, REPO)
    assert repo.full_name == REPO and repo.default_branch == "main"
    commits = await call(lambda: list(repo.get_commits()))
    assert [c.sha for c in commits] == [c["sha"] for c in world.repos[REPO].commits]
    dates = [c["commit"]["author"]["date"] for c in world.repos[REPO].commits]
    assert [c.commit.author.date for c in commits] == [datetime.fromisoformat(d) for d in dates]
    issues = await call(lambda: list(repo.get_issues(state="all")))
    assert {i.title for i in issues} == {"First bug", "Add a feature"}
    assert any(i.pull_request is not None for i in issues)
    releases = await call(lambda: list(repo.get_releases()))
    assert [r.tag_name for r in releases] == ["v0.1.0"]
    # GitHub's timestamps have whole seconds: no milliseconds in what the replay sends.
    async with httpx.AsyncClient(base_url=github_replay.url) as http:
        bodies = [
            (
                await http.get(
                    f"/repos/{REPO}/{path}", params={"state": "all"} if path == "issues" else None
                )
            ).json()
            for path in ("commits", "issues", "releases")
        ]
    stamps = [c["commit"]["committer"]["date"] for c in bodies[0]]
    stamps += [i["updated_at"] for i in bodies[1]] + [r["published_at"] for r in bodies[2]]
    assert stamps and all(GITHUB_SECONDS.match(s) for s in stamps), stamps


async def test_commits_since_until_and_sha_compare_as_times(github_replay: ReplayServer) -> None:
    history = github_replay.github.repos[REPO].commits  # newest first, an hour apart
    dated = [(c["sha"], datetime.fromisoformat(c["commit"]["committer"]["date"])) for c in history]
    repo = await call(gh(github_replay).get_repo, REPO)
    # since is inclusive: the commit made at exactly that second is listed.
    since = await call(lambda: list(repo.get_commits(since=dated[2][1])))
    assert [c.sha for c in since] == [sha for sha, _ in dated[:3]]
    until = await call(lambda: list(repo.get_commits(until=dated[2][1])))
    assert [c.sha for c in until] == [sha for sha, _ in dated[2:]]
    start = await call(lambda: list(repo.get_commits(sha=dated[3][0])))
    assert [c.sha for c in start] == [sha for sha, _ in dated[3:]]
    # The same instant written with an offset is the same time, not a different string.
    at = dated[1][1].astimezone(UTC) + timedelta(hours=2)
    async with httpx.AsyncClient(base_url=github_replay.url) as http:
        offset = await http.get(
            f"/repos/{REPO}/commits", params={"since": at.strftime("%Y-%m-%dT%H:%M:%S+02:00")}
        )
        bad = await http.get(f"/repos/{REPO}/commits", params={"since": "yesterday"})
        unknown = await http.get(f"/repos/{REPO}/commits", params={"sha": "f" * 40})
    assert [c["sha"] for c in offset.json()] == [sha for sha, _ in dated[:2]]
    assert bad.status_code == 422
    assert unknown.status_code == 404


async def test_issues_since_and_labels(github_replay: ReplayServer) -> None:
    world = github_replay.github
    now = time.time()
    bug = world.issue(REPO, "Crash on load", labels=["bug", "p1"], at=now - 60)
    world.issue(REPO, "Docs", labels=["docs"], at=now - 30)
    repo = await call(gh(github_replay).get_repo, REPO)
    since = datetime.fromisoformat(bug["updated_at"])
    recent = await call(lambda: list(repo.get_issues(state="all", since=since)))
    assert {i.title for i in recent} == {"Crash on load", "Docs"}
    labelled = await call(lambda: list(repo.get_issues(state="all", labels=["bug"])))
    assert [i.number for i in labelled] == [bug["number"]]
    both = await call(lambda: list(repo.get_issues(state="all", labels=["bug", "docs"])))
    assert both == []
    with pytest.raises(GithubException) as failed:
        await call(lambda: list(repo.get_issues(state="all", assignee="someone")))
    assert failed.value.status == 501  # a filter GitHub takes and the replay cannot answer
    assert "does not implement the 'assignee' parameter" in failed.value.data["message"]
    async with httpx.AsyncClient(base_url=github_replay.url) as http:
        path = await http.get(f"/repos/{REPO}/commits", params={"path": "README.md"})
        typo = await http.get(f"/repos/{REPO}/commits", params={"pathh": "README.md"})
        bad = await http.get(f"/repos/{REPO}/issues", params={"assignee": "x", "since": "no"})
    assert path.status_code == 501 and "'path'" in path.json()["message"]
    assert typo.status_code == 422  # no parameter of the endpoint: GitHub refuses it
    assert bad.status_code == 422  # what GitHub refuses comes first


async def test_conditional_requests_cost_one_anonymously_and_nothing_with_a_token(
    github_replay: ReplayServer,
) -> None:
    anonymous = gh(github_replay)
    repo = await call(anonymous.get_repo, REPO)
    remaining = anonymous.rate_limiting[0]
    assert await call(repo.update) is False  # 304: not modified
    assert anonymous.rate_limiting[0] == remaining - 1
    authorized = gh(github_replay, token="ghp_test")
    repo = await call(authorized.get_repo, REPO)
    remaining = authorized.rate_limiting[0]
    assert await call(repo.update) is False
    assert authorized.rate_limiting[0] == remaining
    github_replay.github.star(REPO, 5)
    assert await call(repo.update) is True and repo.stargazers_count == 15
