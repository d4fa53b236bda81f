# The seed corpora of the parser fuzz targets, replayed in every ctest run (no clang needed).
certfleet_add_test_suite(fuzz_corpus_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/corpus_replay_test.cpp
  LIBS certfleet_control_client certfleet_config certfleet_storage certfleet_test_support)

# The same for the manifest, TLS session file and agent state targets (tests/fuzz/state_targets.hpp).
certfleet_add_test_suite(fuzz_state_corpus_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/state_replay_test.cpp
  LIBS certfleet_control_client certfleet_agent certfleet_test_support)
