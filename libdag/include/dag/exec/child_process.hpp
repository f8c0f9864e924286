#pragma once
/// @file A shell command as a child process in its own process group, with its log, timeout and
/// cancellation: what the bash operator and the local executor run tasks with.
// (Interface to be completed by its implementation; see libdag/src/child_process.cpp.)
