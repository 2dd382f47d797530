"""`file list|delete|get|status` on <base>/files, as more-commands.md records 2.9."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from plumbing import children
from test_session import output

from minishell.commands import files
from minishell.session import Session, open_session

MODIFIED = 1_796_390_937  # 2026-12-04T13:28:57Z


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Session, Path]]:
    """A session on base tmp_path/base, whose files folder holds `a.txt` (6 bytes)
    and `sub/b.txt` (2 bytes), all modified at MODIFIED."""
    folder = tmp_path / "base" / "files"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("hello\n")
    (folder / "sub" / "b.txt").write_text("b\n")
    for path in (folder / "a.txt", folder / "sub" / "b.txt", folder / "sub"):
        os.utime(path, (MODIFIED, MODIFIED))
    async with open_session(hostname="vm", base=str(tmp_path / "base")) as session:
        await session.run_line(".annotate false")
        yield session, folder
    assert children() == set()


async def test_listings_as_minimega_prints_them(served: tuple[Session, Path]) -> None:
    session, folder = served
    size = os.lstat(folder / "sub").st_size  # 4096 on ext4, as in the recording
    width = max(len("size"), len(str(size)))
    assert await output(session, "file list") == [(
        f"dir   | name  | {'size':<{width}} | modified\n"
        f"      | a.txt | {'6':<{width}} | 2026-12-04T13:28:57Z\n"
        f"<dir> | sub   | {size:<{width}} | 2026-12-04T13:28:57Z", "")]
    assert await output(session, "file list /") == await output(session, "file list")
    assert await output(session, "file list sub") == [(
        "dir  | name      | size | modified\n"
        "     | sub/b.txt | 2    | 2026-12-04T13:28:57Z", "")]
    assert await output(session, "file list / recursive") == [(
        "dir  | name      | size | modified\n"
        "     | a.txt     | 6    | 2026-12-04T13:28:57Z\n"
        "     | sub/b.txt | 2    | 2026-12-04T13:28:57Z", "")]
    assert await output(session, "file list a.txt") == [(
        "dir  | name  | size | modified\n"
        "     | a.txt | 6    | 2026-12-04T13:28:57Z", "")]


async def test_status_get_and_delete_as_minimega(served: tuple[Session, Path]) -> None:
    session, folder = served
    assert await output(session, "file status") == [("", "")]
    assert await output(session, "file get a.txt") == [("", "")]
    assert await output(session, "file get sub") == [("", "")]
    assert await output(session, "file get nosuch") == [("", "get nosuch: file not found")]
    assert await output(session, "file delete sub/b.txt") == [("", "")]
    assert not (folder / "sub" / "b.txt").exists()
    assert await output(session, "file list sub") == [("", "")]
    assert await output(session, "file delete nosuch") == [("", "")]
    assert await output(session, "file delete sub") == [("", "")]
    assert sorted(os.listdir(folder)) == ["a.txt"]


async def test_globs_and_dot_files(served: tuple[Session, Path]) -> None:
    session, folder = served
    (folder / ".hidden.txt").write_text("")
    (folder / "c.log").write_text("")
    [(listing, _)] = await output(session, ".columns name file list *.txt")
    assert listing.splitlines() == ["name", ".hidden.txt", "a.txt"]
    [(listing, _)] = await output(session, ".columns name file list s*")
    assert listing.splitlines() == ["name", "sub/b.txt"]
    await session.run_line("file delete *.txt")
    assert sorted(os.listdir(folder)) == ["c.log", "sub"]


async def test_delete_of_the_top_empties_it(served: tuple[Session, Path]) -> None:
    session, folder = served
    assert await output(session, 'file delete ""') == [
        ("", "file delete: empty path (/ is the whole folder)")]
    assert await output(session, "file delete $MINISHELL_UNSET_VARIABLE") == [
        ("", "file delete: empty path (/ is the whole folder)")]
    assert await output(session, "file delete /") == [("", "")]
    assert folder.is_dir() and os.listdir(folder) == []
    assert await output(session, "file list") == [("", "")]


async def test_no_files_folder_lists_nothing(tmp_path: Path) -> None:
    async with open_session(hostname="vm", base=str(tmp_path)) as session:
        assert await output(session, "file list") == [("", "")]
        assert await output(session, "file list / recursive") == [("", "")]
        assert await output(session, "file delete x") == [("", "")]


@pytest.mark.parametrize(
    "line",
    ["file list ..", "file list ../x", "file list /../../etc", "file list sub/../../x",
     "file delete ../base", "file delete ..", "file get ../../etc/passwd",
     "file list ../* recursive"],
)
async def test_paths_out_of_the_folder_are_refused(served: tuple[Session, Path],
                                                  line: str) -> None:
    session, folder = served
    path = line.split()[2]
    assert await output(session, line) == [("", f"file: {path}: outside the files folder")]
    assert (folder / "a.txt").exists()


async def test_paths_that_stay_inside_are_fine(served: tuple[Session, Path]) -> None:
    session, _ = served
    [(listing, error)] = await output(session, ".columns name file list sub/../sub/./b.txt")
    assert (listing, error) == ("name\nsub/b.txt", "")


async def test_symbolic_links_out_of_the_folder_are_refused(served: tuple[Session, Path],
                                                           tmp_path: Path) -> None:
    session, folder = served
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("keep me")
    (folder / "out").symlink_to(outside)
    assert await output(session, "file list out") == [
        ("", "file: out: outside the files folder")]
    assert await output(session, "file delete out/secret") == [
        ("", "file: out/secret: outside the files folder")]
    assert await output(session, "file get out/secret") == [
        ("", "file: out/secret: outside the files folder")]
    # Listed from above it, a link is an entry of its own, never followed.
    [(listing, _)] = await output(session, ".columns name file list / recursive")
    assert listing.splitlines() == ["name", "a.txt", "out", "sub/b.txt"]
    # Deleting the link removes the link, not what it points to.
    assert await output(session, "file delete out") == [("", "")]
    assert (outside / "secret").read_text() == "keep me"
    assert not (folder / "out").is_symlink()


async def test_a_listing_is_bounded(served: tuple[Session, Path],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    session, folder = served
    monkeypatch.setattr(files, "LIST_MAX", 2)
    [(listing, error)] = await output(session, ".columns name file list / recursive")
    assert (listing, error) == ("name\na.txt\nsub/b.txt", "")  # 2: as many as allowed
    (folder / "sub" / "c.txt").write_text("")
    assert await output(session, "file list / recursive") == [(
        "", "file list: more than 2 entries; list a folder below it")]
    (folder / "sub" / "d.txt").write_text("")  # a folder too big to read whole
    assert await output(session, "file list sub") == [(
        "", "file list: more than 2 entries; list a folder below it")]
    monkeypatch.setattr(files, "MATCHES_MAX", 2)
    assert await output(session, "file delete sub/*") == [(
        "", "file: sub/*: more than 2 matches")]
    assert len(os.listdir(folder / "sub")) == 3


async def test_a_deep_tree_is_walked(served: tuple[Session, Path]) -> None:
    session, folder = served
    levels = 1100  # deeper than Python recurses (os.makedirs would not make it either)
    folder_fd = os.open(folder, os.O_RDONLY)
    try:
        for name in ["deep", *["d"] * levels]:
            os.mkdir(name, dir_fd=folder_fd)
            below = os.open(name, os.O_RDONLY, dir_fd=folder_fd)
            os.close(folder_fd)
            folder_fd = below
        os.close(os.open("leaf", os.O_CREAT | os.O_WRONLY, dir_fd=folder_fd))
    finally:
        os.close(folder_fd)
    relative = "/".join(["d"] * levels)
    try:
        [(listing, error)] = await output(session, ".columns name file list deep recursive")
        assert (error, listing.splitlines()[1]) == ("", f"deep/{relative}/leaf")
        assert await output(session, "file delete deep") == [("", "")]
        assert sorted(os.listdir(folder)) == ["a.txt", "sub"]
    finally:  # pytest's own clean-up recurses, and would fail on what is left
        files.delete(files.FilesFolder(str(folder)), "deep")


async def test_an_unreadable_folder_is_gos_error(served: tuple[Session, Path]) -> None:
    session, folder = served
    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    (folder / "sub").chmod(0)
    try:
        assert await output(session, "file list sub") == [
            ("", f"open {folder}/sub: permission denied")]
    finally:
        (folder / "sub").chmod(0o755)
