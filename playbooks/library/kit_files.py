#!/usr/bin/python
"""Several files and directories of one host in one module call.

A loop of `copy`, `template` or `file` costs Ansible one task per item on every host (a worker
forked, the variables templated, a round trip to the host): 60 of them for six small files on ten
hosts. This module takes the list and sets every entry in one call, with the same meaning as
those modules: content (or a template, rendered by the action of the same name on the
controller), owner, group and mode; a directory; a file removed. It reports each
change as its own diff, keeps check mode, and validates a file before it replaces the old one.
"""

from __future__ import annotations

import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: kit_files
short_description: Files and directories of a host, set in one call
description:
  - Each entry of I(files) is set as ansible.builtin.copy (with content) or ansible.builtin.file
    would set it. Entries are handled in order; the first that fails stops the call, and an
    entry whose content does not pass I(validate) leaves the file as it was.
options:
  files:
    description: What to set, in order.
    type: list
    elements: dict
    required: true
    suboptions:
      path: {description: Absolute path., type: path, required: true}
      state:
        description: >-
          C(file) (with I(content), written; without, the file must exist), C(directory)
          (created with its parents), C(link) (a symbolic link to I(src)) or C(absent).
        type: str
        choices: [file, directory, link, absent]
        default: file
      src: {description: "What a C(link) points to (as ansible.builtin.file's src; replaces a file there).", type: str}
      content: {description: The whole content of the file., type: str}
      template:
        description: >-
          A template (found as ansible.builtin.template finds its src) whose rendering is the
          content; rendered on the controller by the kit_files action with the task's variables.
        type: str
      template_vars: {description: Variables for the template alone., type: dict}
      lines:
        description: >-
          Lines of an existing file, as ansible.builtin.lineinfile sets them: the last line that
          matches I(regexp) becomes I(line); when none matches, I(line) is added at the end.
        type: list
        elements: dict
        suboptions:
          regexp: {description: A Python regular expression., type: str, required: true}
          line: {description: The line., type: str, required: true}
      owner: {description: The owner's name., type: str}
      group: {description: The group's name., type: str}
      mode: {description: An octal mode such as C("0644")., type: raw}
      validate:
        description: A command run on the new content before it replaces the file; C(%s) is its path.
        type: str
supports_check_mode: true
"""

RETURN = r"""
changed_paths: {description: The paths that changed (or would change in check mode)., type: list, returned: always}
"""

ENTRY_OPTIONS = {
    "path": {"type": "path", "required": True},
    "state": {"type": "str", "choices": ["file", "directory", "link", "absent"], "default": "file"},
    "src": {"type": "str"},
    "content": {"type": "str"},
    # rendered into content by the controller side (playbooks/action_plugins/kit_files.py)
    "template": {"type": "str"},
    "template_vars": {"type": "dict"},
    "lines": {
        "type": "list",
        "elements": "dict",
        "options": {"regexp": {"type": "str", "required": True}, "line": {"type": "str", "required": True}},
    },
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "mode": {"type": "raw"},
    "validate": {"type": "str"},
}


def file_args(entry: dict, path: str) -> dict:
    """The file attributes AnsibleModule.set_fs_attributes_if_different reads."""
    return {
        "path": path,
        "mode": entry["mode"],
        "owner": entry["owner"],
        "group": entry["group"],
        "secontext": None,
        "attributes": None,
    }


def state_diff(path: str, before: str, after: str) -> dict:
    """A diff entry for a path that appears, goes or changes kind."""
    return {"before_header": path, "after_header": path, "before": f"{path}: {before}\n", "after": f"{path}: {after}\n"}


def set_attributes(module: AnsibleModule, entry: dict, changed: bool, diffs: list) -> bool:
    """Owner, group and mode as the entry says; an attribute that changes is shown in the diff."""
    diff: dict = {"before_header": entry["path"], "after_header": entry["path"]}
    changed = module.set_fs_attributes_if_different(file_args(entry, entry["path"]), changed, diff)
    if "before" in diff:
        diffs.append(diff)
    return changed


def with_lines(text: str, lines: list[dict]) -> str:
    """The text with each line set as lineinfile sets it (the last match replaced, else appended)."""
    current = text.splitlines()
    for wanted in lines:
        pattern = re.compile(wanted["regexp"])
        matches = [index for index, line in enumerate(current) if pattern.search(line)]
        if matches:
            current[matches[-1]] = wanted["line"]
        else:
            current.append(wanted["line"])
    return "\n".join(current) + "\n"


def read_text(path: str) -> str | None:
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return handle.read()


def write_validated(module: AnsibleModule, entry: dict) -> None:
    """The new content in a temporary file beside the old one, validated, then moved over it."""
    path = entry["path"]
    fd, temporary = tempfile.mkstemp(prefix=".kit_files.", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(entry["content"])
        module.set_fs_attributes_if_different(file_args(entry, temporary), False)
        if entry["validate"]:
            if "%s" not in entry["validate"]:
                module.fail_json(msg=f"{path}: validate must contain %s, the new file's path: {entry['validate']}")
            rc, out, err = module.run_command(entry["validate"] % temporary)
            if rc != 0:
                message = (
                    f"{path}: failed to validate: `{entry['validate']}` refused the new content; the file is unchanged"
                )
                module.fail_json(msg=message, rc=rc, stdout=out, stderr=err)
        module.atomic_move(temporary, path, unsafe_writes=False)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def set_link(module: AnsibleModule, entry: dict, diffs: list) -> bool:
    """A symbolic link to src, put in place of what was there (a file or another link) in one rename."""
    path, target = entry["path"], entry["src"]
    if not target:
        module.fail_json(msg=f"{path}: a link needs src, what it points to")
    if any(entry[attribute] is not None for attribute in ("owner", "group", "mode", "content", "lines")):
        module.fail_json(msg=f"{path}: a link takes src only (no owner, group, mode, content or lines)")
    if os.path.isdir(path) and not os.path.islink(path):
        module.fail_json(msg=f"{path}: is a directory, expected a link or nothing")
    if os.path.islink(path) and os.readlink(path) == target:
        return False
    before = f"-> {os.readlink(path)}" if os.path.islink(path) else "file" if os.path.lexists(path) else "absent"
    diffs.append(state_diff(path, before, f"-> {target}"))
    if not module.check_mode:
        temporary = os.path.join(os.path.dirname(path), f".kit_files.{os.getpid()}.{os.path.basename(path)}")
        if os.path.lexists(temporary):  # left by a run killed between its symlink and its rename
            os.unlink(temporary)
        os.symlink(target, temporary)
        try:
            os.rename(temporary, path)
        finally:
            if os.path.lexists(temporary):
                os.unlink(temporary)
    return True


def set_entry(module: AnsibleModule, entry: dict, diffs: list) -> bool:
    """Set one entry; True when it changed (or would, in check mode)."""
    path, state = entry["path"], entry["state"]
    if not os.path.isabs(path):
        module.fail_json(msg=f"{path}: expected an absolute path")
    if state == "absent":
        if not os.path.lexists(path):
            return False
        if os.path.isdir(path) and not os.path.islink(path):
            module.fail_json(msg=f"{path}: is a directory; kit_files removes files only")
        diffs.append(state_diff(path, "present", "absent"))
        if not module.check_mode:
            os.unlink(path)
        return True
    if state == "directory":
        if os.path.exists(path) and not os.path.isdir(path):
            module.fail_json(msg=f"{path}: exists and is not a directory")
        if os.path.exists(path):
            return set_attributes(module, entry, False, diffs)
        diffs.append(state_diff(path, "absent", "directory"))
        if not module.check_mode:
            os.makedirs(path)
            set_attributes(module, entry, True, [])
        return True
    if state == "link":
        return set_link(module, entry, diffs)
    if entry["template"] is not None:
        module.fail_json(msg=f"{path}: a template is rendered by the kit_files action, which did not run here")
    if entry["lines"] is not None and entry["content"] is not None:
        module.fail_json(msg=f"{path}: give content or lines, not both")
    if entry["lines"] is not None:
        if not os.path.isfile(path):
            module.fail_json(msg=f"{path}: expected an existing file to set lines in")
        entry = {**entry, "content": with_lines(read_text(path), entry["lines"])}
    if entry["content"] is None:
        if not os.path.isfile(path):
            module.fail_json(msg=f"{path}: expected an existing file (no content given to write)")
        return set_attributes(module, entry, False, diffs)
    if os.path.isdir(path):
        module.fail_json(msg=f"{path}: is a directory, expected a file")
    before = read_text(path)
    if before != entry["content"]:
        diffs.append(
            {
                "before_header": path if before is not None else f"{path} (absent)",
                "after_header": path,
                "before": before or "",
                "after": entry["content"],
            }
        )
        if module.check_mode:
            return True
        write_validated(module, entry)
        return set_attributes(module, entry, True, [])
    return set_attributes(module, entry, False, diffs)


def main() -> None:
    module = AnsibleModule(
        argument_spec={"files": {"type": "list", "elements": "dict", "required": True, "options": ENTRY_OPTIONS}},
        supports_check_mode=True,
    )
    diffs: list = []
    changed_paths = [entry["path"] for entry in module.params["files"] if set_entry(module, entry, diffs)]
    result = {"changed": bool(changed_paths), "changed_paths": changed_paths}
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
