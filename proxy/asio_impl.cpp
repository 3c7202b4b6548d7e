// SPDX-License-Identifier: Apache-2.0
// Separate compilation of Boost.Asio and Boost.Beast (BOOST_*_SEPARATE_COMPILATION is set for
// every proxy/ translation unit by the Makefile): their implementation is compiled once, here.
#include <utility>

#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
