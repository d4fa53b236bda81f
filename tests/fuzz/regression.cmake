# The seed corpora of the parser fuzz targets, replayed in every ctest run (no clang needed).
certfleet_add_test_suite(fuzz_corpus_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/corpus_replay_test.cpp
  LIBS certfleet_control_client certfleet_config certfleet_storage certfleet_test_support)
