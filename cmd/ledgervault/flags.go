package main

// progressModes are the values of --progress of backup, restore and verify.
var progressModes = []string{"auto", "bar", "log", "none"}
