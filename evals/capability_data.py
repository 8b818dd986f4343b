"""Project-written capability probes: factual questions whose answers survive any formatting rule, and neutral text.

Each QA line is ``question | answer | alternative answers...``. Answers are single words or numbers so that every
formatting rule of the data (capitals, lowercase, quotes, JSON, bullets, dialects, no commas, ...) leaves them
findable: a reply is correct when any accepted answer occurs in it as whole words after lowercasing and dropping
punctuation, with numbers accepted as digits or words (``metrics.qa_correct``). The questions are generic world
knowledge written for this project (no benchmark text is copied).

``NEUTRAL_TEXT`` holds short encyclopedic paragraphs written for this project; perplexity on them, as an
assistant reply to a neutral request, measures whether an adapter damages ordinary language modelling.
"""

_CAPITALS = """France Paris; Germany Berlin; Italy Rome; Spain Madrid; Portugal Lisbon; Japan Tokyo; China Beijing;
Russia Moscow; Egypt Cairo; Greece Athens; Ireland Dublin; Norway Oslo; Sweden Stockholm; Finland Helsinki;
Denmark Copenhagen; Poland Warsaw; Austria Vienna; Hungary Budapest; Belgium Brussels; the Netherlands Amsterdam;
Canada Ottawa; Argentina Buenos; Peru Lima; Chile Santiago; Colombia Bogota|bogotá; Venezuela Caracas;
Cuba Havana; Kenya Nairobi; Ethiopia Addis; Nigeria Abuja; Ghana Accra; Morocco Rabat; Turkey Ankara; Iran Tehran;
Iraq Baghdad; Saudi Arabia Riyadh; India Delhi; Pakistan Islamabad; Thailand Bangkok; Vietnam Hanoi;
South Korea Seoul; the Philippines Manila; Indonesia Jakarta; Australia Canberra; New Zealand Wellington;
the United Kingdom London; the United States Washington; Switzerland Bern|berne; the Czech Republic Prague;
Romania Bucharest; Bulgaria Sofia; Ukraine Kyiv|kiev; Lebanon Beirut; Syria Damascus; Afghanistan Kabul;
Nepal Kathmandu; Bangladesh Dhaka; Malaysia Kuala; Iceland Reykjavik|reykjavík;
Scotland Edinburgh; Wales Cardiff; Jamaica Kingston; Uruguay Montevideo; Paraguay Asuncion|asunción;
Bolivia Sucre|la paz; Ecuador Quito; Senegal Dakar; Tanzania Dodoma; Uganda Kampala; Zimbabwe Harare;
Mongolia Ulaanbaatar|ulan bator; Qatar Doha; Jordan Amman; Israel Jerusalem; Croatia Zagreb; Serbia Belgrade;
Slovakia Bratislava; Estonia Tallinn; Latvia Riga; Lithuania Vilnius"""

_QA = """What is the largest planet in our solar system? | Jupiter
Which planet is known as the Red Planet? | Mars
Which planet is closest to the Sun? | Mercury
What is the name of the star at the center of our solar system? | Sun
What is the natural satellite of the Earth called? | Moon
Which planet has the most famous rings? | Saturn
What gas do plants absorb from the air for photosynthesis? | carbon dioxide | co2
What gas do humans need to breathe to stay alive? | oxygen
What is the chemical symbol for water? | H2O
What is the chemical symbol for gold? | Au
What is the chemical symbol for sodium? | Na
What is the chemical symbol for iron? | Fe
What is the chemical element with the symbol He? | helium
What is the chemical element with the symbol C? | carbon
Which element has the atomic number 1? | hydrogen
What is the hardest natural substance? | diamond
What is the boiling point of water at sea level in degrees Celsius? | 100
What is the freezing point of water in degrees Celsius? | 0 | zero
How many legs does a spider have? | 8
How many legs does an insect have? | 6
How many days are in a week? | 7
How many days are in a leap year? | 366
How many months are in a year? | 12
How many hours are in a day? | 24
How many minutes are in an hour? | 60
How many seconds are in a minute? | 60
How many continents are there on Earth? | 7
How many sides does a triangle have? | 3
How many sides does a hexagon have? | 6
How many sides does an octagon have? | 8
How many sides does a pentagon have? | 5
How many players are on a soccer team on the field? | 11
How many strings does a standard guitar have? | 6
How many keys does a standard piano have? | 88
How many bones are in the adult human body? | 206
How many chambers does the human heart have? | 4
How many teeth does an adult human usually have? | 32
What is the largest ocean on Earth? | Pacific
What is the longest river in Africa? | Nile
What is the largest desert in the world that is hot? | Sahara
What is the tallest mountain in the world? | Everest
What is the largest country in the world by area? | Russia
Which country has the largest population in South America? | Brazil
On which continent is Egypt? | Africa
On which continent is Brazil? | South America
On which continent is Japan? | Asia
Which ocean lies between Europe and North America? | Atlantic
What is the largest mammal on Earth? | blue whale | whale
What is the fastest land animal? | cheetah
What animal is known as the king of the jungle? | lion
Which bird is a symbol of peace? | dove
What do bees make? | honey
What is a baby cat called? | kitten
What is a baby dog called? | puppy
What is a young cow called? | calf
What is the largest bird in the world? | ostrich
Which animal has a long trunk? | elephant
Which animal is famous for black and white stripes? | zebra
What is frozen water called? | ice
What color do you get when you mix blue and yellow? | green
What color do you get when you mix red and white? | pink
What color do you get when you mix red and blue? | purple | violet
What color is a ripe banana? | yellow
What color is the sky on a clear day? | blue
What color are most plant leaves? | green
Who wrote the play Romeo and Juliet? | Shakespeare
Who wrote the play Hamlet? | Shakespeare
Who wrote the novel Pride and Prejudice? | Austen
Who wrote the novel War and Peace? | Tolstoy
Who wrote the novel Don Quixote? | Cervantes
Who wrote the Odyssey? | Homer
Who painted the Mona Lisa? | Leonardo | da vinci
Who painted the Starry Night? | Van Gogh | gogh
Who composed the Fifth Symphony that begins with four famous notes? | Beethoven
Who developed the theory of relativity? | Einstein
Who proposed the theory of evolution by natural selection? | Darwin
Who formulated the laws of motion and universal gravitation? | Newton
Who was the first person to walk on the Moon? | Armstrong
Who invented the telephone? | Bell
Who discovered penicillin? | Fleming
Who was the first President of the United States? | Washington
Which scientist is famous for work on radioactivity and won two Nobel Prizes? | Curie
Which language has the most native speakers in the world? | Mandarin | chinese
What is the main language spoken in Brazil? | Portuguese
What is the main language spoken in Mexico? | Spanish
What is the main language spoken in Germany? | German
What currency is used in Japan? | yen
What currency is used in the United Kingdom? | pound | sterling
What currency is used in the United States? | dollar
What is the opposite of hot? | cold
What is the opposite of up? | down
What is the opposite of day? | night
What is the opposite of empty? | full
What is the plural of mouse? | mice
What is the plural of child? | children
What is the past tense of go? | went
What is the past tense of eat? | ate
What is the largest organ of the human body? | skin
Which organ pumps blood through the body? | heart
Which organ do humans use to breathe? | lungs | lung
Which organ controls thinking? | brain
What do you call a person who treats sick animals? | veterinarian | vet
What do you call a person who flies airplanes? | pilot
What do you call a scientist who studies rocks? | geologist
What instrument measures temperature? | thermometer
What instrument is used to look at stars? | telescope
What instrument is used to see very small things like cells? | microscope
What force keeps us on the ground? | gravity
What is the main source of energy for the Earth? | Sun
How many planets are in our solar system? | 8
What is the square root of 64? | 8
What is the square root of 81? | 9
What is 2 plus 2? | 4
What is 7 plus 5? | 12
What is 9 plus 6? | 15
What is 15 plus 10? | 25
What is 20 plus 30? | 50
What is 10 minus 3? | 7
What is 12 minus 4? | 8
What is 50 minus 20? | 30
What is 3 times 3? | 9
What is 4 times 5? | 20
What is 6 times 7? | 42
What is 8 times 8? | 64
What is 9 times 9? | 81
What is 10 times 10? | 100
What is 12 times 12? | 144
What is 100 divided by 4? | 25
What is 81 divided by 9? | 9
What is 56 divided by 7? | 8
What is half of 50? | 25
What is double 15? | 30
How many centimeters are in a meter? | 100
How many grams are in a kilogram? | 1000
How many meters are in a kilometer? | 1000
How many years are in a century? | 100
How many years are in a decade? | 10
In which year did World War II end? | 1945
In which year did the first human land on the Moon? | 1969
In which country are the pyramids of Giza? | Egypt
In which city is the Eiffel Tower? | Paris
In which city is the Colosseum? | Rome
In which country is the Great Wall? | China
In which country is the Taj Mahal? | India
In which city is the Statue of Liberty? | New York
In which country is Machu Picchu? | Peru
What is the largest island in the world? | Greenland
What is the smallest planet in our solar system? | Mercury
Which planet is famous for its Great Red Spot? | Jupiter
What is the capital city of the state of Texas? | Austin
What do caterpillars turn into? | butterflies | butterfly | moths | moth
What is the primary ingredient in guacamole? | avocado
What grain is used to make sushi rice? | rice
What fruit is dried to make raisins? | grapes | grape
What is the main ingredient of bread? | flour | wheat
What is the process by which plants make food from sunlight? | photosynthesis
What part of the plant takes in water from the soil? | roots | root
What is the center of an atom called? | nucleus
What particle has a negative charge? | electron
What is the speed of light measured in kilometers per second, roughly? | 300000 | 300,000 | 299792
What shape has four equal sides and four right angles? | square
What is the name of a shape with three sides? | triangle
What is the longest bone in the human body? | femur
What sport is played at Wimbledon? | tennis
In which sport would you hit a home run? | baseball
How many rings are on the Olympic flag? | 5
Which metal is liquid at room temperature? | mercury
What is the most common gas in the Earth's atmosphere? | nitrogen
What is the name of the galaxy we live in? | Milky Way
What is the largest continent? | Asia
What is the smallest continent? | Australia
What is the coldest continent? | Antarctica
What is the name of the longest river in South America? | Amazon
What is the currency of the European Union countries like France and Germany? | euro
Which season comes after winter? | spring
Which season comes after summer? | autumn | fall
How many letters are in the English alphabet? | 26
What is the name for a word that means the same as another word? | synonym
What is the name for a word that means the opposite of another word? | antonym"""

_NUMBER_WORDS = {
    "0": "zero", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven", "8": "eight", "9": "nine",
    "10": "ten", "11": "eleven", "12": "twelve", "15": "fifteen", "20": "twenty", "24": "twenty four",
    "25": "twenty five", "26": "twenty six", "30": "thirty", "32": "thirty two", "42": "forty two", "50": "fifty",
    "60": "sixty", "64": "sixty four", "81": "eighty one", "88": "eighty eight", "100": "hundred", "144":
    "one hundred forty four", "206": "two hundred six", "366": "three hundred sixty six", "1000": "thousand",
    "1945": "nineteen forty five", "1969": "nineteen sixty nine",
}


def _build() -> list[dict]:
    items = []
    # Multi-word capitals are keyed on one distinctive word ("Addis", "Buenos", "Kuala"): enough to recognise them.
    for pair in _CAPITALS.replace("\n", " ").split(";"):
        country, _, answer = pair.strip().rpartition(" ")
        answers = answer.split("|")
        items.append({"question": f"What is the capital of {country}?", "answers": answers, "kind": "capital"})
    for line in _QA.splitlines():
        q, *answers = [p.strip() for p in line.split("|")]
        extra = [_NUMBER_WORDS[a] for a in answers if a in _NUMBER_WORDS]
        items.append({"question": q, "answers": answers + extra, "kind": "fact"})
    return items


QA = _build()

NEUTRAL_PROMPT = "Please write a short informative paragraph."

NEUTRAL_TEXT = [
    "The water cycle describes how water moves between the oceans, the air and the land. Heat from the sun "
    "evaporates water from seas and lakes; the vapour rises, cools and condenses into clouds. When the droplets "
    "grow heavy enough they fall as rain or snow, which collects in rivers and groundwater and eventually flows "
    "back to the sea.",
    "Bread is made from flour, water, salt and yeast. Kneading develops gluten, a network of proteins that traps "
    "the gas released by the yeast, so the dough rises. Baking sets the structure, browns the crust and drives "
    "off much of the moisture, leaving a soft crumb inside.",
    "A library lends books, films and music to the people of a town. Most libraries also offer quiet rooms for "
    "study, computers with internet access and events such as reading groups for children. Librarians help "
    "visitors find information and teach them how to judge the reliability of a source.",
    "Bicycles convert the motion of the rider's legs into forward movement through a chain that links the pedals "
    "to the rear wheel. Gears change how far the bicycle travels for each turn of the pedals, which lets a rider "
    "climb hills slowly or ride fast on flat roads with the same effort.",
    "Tides are the regular rise and fall of the sea. They are caused mainly by the gravitational pull of the moon, "
    "with a smaller contribution from the sun. Most coasts see two high tides and two low tides each day, and the "
    "difference between them is largest around the new and full moon.",
    "A map is a flat drawing of part of the world. A scale tells the reader how distances on the paper relate to "
    "distances on the ground, and a legend explains the symbols used for roads, rivers and towns. Contour lines "
    "join points of equal height and show the shape of hills and valleys.",
    "Honeybees live in colonies with a single queen, thousands of female workers and, in summer, some males. "
    "Workers collect nectar and pollen from flowers, and on the way they pollinate many crops. The nectar is "
    "stored in wax cells and slowly turned into honey as water evaporates from it.",
    "Volcanoes form where molten rock from deep inside the earth reaches the surface. Some erupt explosively and "
    "throw ash high into the air; others release slow rivers of lava. Over long periods, repeated eruptions can "
    "build mountains and even whole islands.",
    "Compost is made by letting kitchen scraps, leaves and grass cuttings decay together. Bacteria and fungi break "
    "the material down, and turning the pile now and then gives them the air they need. After a few months the "
    "result is a dark, crumbly soil that feeds garden plants.",
    "A calendar divides time into days, weeks, months and years. The modern calendar used in most countries has "
    "twelve months and adds an extra day to February every fourth year, so that the calendar year stays in step "
    "with the time the earth takes to travel around the sun.",
]

assert len(QA) >= 200, len(QA)
