print("octopus")
