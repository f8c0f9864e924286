#pragma once
/// @file Airflow-style `{{ macro }}` templates in operator fields: parse, check at load time, render.
// (Interface pinned by the foundation issue; see docs/concepts.md "Templates".)
