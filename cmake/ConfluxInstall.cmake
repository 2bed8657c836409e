# cmake --install: libraries, headers, binaries and a package config for find_package(Conflux).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(CONFLUX_EXPORT_TARGETS conflux_core conflux_core_torch conflux_options)
foreach(lib conflux_dataplane conflux_trainer_meta conflux_trainer conflux_evaluator conflux_report
        conflux_protocol conflux_federated conflux_pipeline)
  if(TARGET ${lib})
    list(APPEND CONFLUX_EXPORT_TARGETS ${lib})
  endif()
endforeach()
install(TARGETS ${CONFLUX_EXPORT_TARGETS} EXPORT ConfluxTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
foreach(bin conflux conflux-worker)
  if(TARGET ${bin})
    install(TARGETS ${bin} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()
# The command's verb registry, and its plugin of libtorch verbs (found from the binary as
# ../<libdir>/conflux; coordinator/CMakeLists.txt).
if(TARGET conflux_cli)
  install(TARGETS conflux_cli LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(TARGETS conflux_torch_verbs LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/conflux)
endif()
if(TARGET conflux_tasks)  # used by the plugin's `evaluate` and by conflux-worker
  install(TARGETS conflux_tasks LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
foreach(comp core dataplane trainer evaluator report protocol federated tasks pipeline coordinator worker)
  if(EXISTS ${PROJECT_SOURCE_DIR}/${comp}/include)
    install(DIRECTORY ${PROJECT_SOURCE_DIR}/${comp}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  endif()
endforeach()
# The sbatch scripts `conflux pipeline submit` uses (found from the binary as ../share/conflux/slurm).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/scripts/slurm/ DESTINATION ${CMAKE_INSTALL_DATADIR}/conflux/slurm
        USE_SOURCE_PERMISSIONS FILES_MATCHING PATTERN "*.sbatch")
install(DIRECTORY ${PROJECT_BINARY_DIR}/generated/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT ConfluxTargets NAMESPACE Conflux:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Conflux)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/ConfluxConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ConfluxConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Conflux)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ConfluxConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ConfluxConfig.cmake ${PROJECT_BINARY_DIR}/ConfluxConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Conflux)
