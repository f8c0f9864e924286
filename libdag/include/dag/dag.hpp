#pragma once
/// @file The umbrella header: everything a DAG author or embedding program needs: the model, the
/// loaders, the engine, the store, the domain operations and the HTTP face.

#include <dag/core/connection.hpp>
#include <dag/core/definition.hpp>
#include <dag/core/environment.hpp>
#include <dag/core/error.hpp>
#include <dag/core/log_file.hpp>
#include <dag/core/operator.hpp>
#include <dag/core/retry_policy.hpp>
#include <dag/core/secret_mask.hpp>
#include <dag/core/states.hpp>
#include <dag/core/suggest.hpp>
#include <dag/core/task.hpp>
#include <dag/core/time.hpp>
#include <dag/core/trigger_rule.hpp>
#include <dag/engine/engine.hpp>
#include <dag/graph/task_graph.hpp>
#include <dag/http/face.hpp>
#include <dag/http/serve.hpp>
#include <dag/http/server.hpp>
#include <dag/load/check.hpp>
#include <dag/load/dag_folder.hpp>
#include <dag/load/operator_catalog.hpp>
#include <dag/load/yaml_loader.hpp>
#include <dag/metrics/registry.hpp>
#include <dag/model/operations.hpp>
#include <dag/operators/builtin.hpp>
#include <dag/schedule/cron.hpp>
#include <dag/schedule/timetable.hpp>
#include <dag/store/store.hpp>
#include <dag/template/template.hpp>
